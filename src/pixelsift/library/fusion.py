"""One calibrated score per photo and query concept, fused from all the evidence the index holds.

For a concept ("dog", "beach", "food") and a photo, each source gives a probability-like score:
- **classifier**: its probability summed over the concept's classes, from all of its classes (the
  index keeps the whole distribution: scene classes like seashore or alp are rarely in a top 5), then
  Platt-scaled: sigmoid(a * logit(mass) + b); for a word that names a thing, a photo where the detector
  found a big, sure box of something else that the classifier sees too keeps only part of it, when the
  detector has a class for the thing itself (`Fusion.explained_away`: the dog mass on a boxed cat is
  the classifier's confusion);
- **detector**: each matching box's score, Platt-scaled, times `sqrt(area / small_box)` for a box
  smaller than `small_box` of the photo, times the classifier's agreement: for a detected class the
  classifier has classes for (`Vocabulary.known_to_classifier`: dogs, cats, birds, cars; not people
  or horses), a photo whose classifier is sure of something else and gives the detected class almost
  nothing ("bird 0.99" on a cheetah) keeps only `1 - confidence elsewhere` of the box's score;
  several boxes combine as a noisy OR;
- **labeler**: the user's classifier's probability for a matching label (a labeler that does not
  recognise a photo gives it none: see `transfer`); the scene regions (`imaging.scene`: sky, grass,
  tree, road) are stored and scored the same way, as labels of the source "scene";
- **text-image** model (when the library has one): the cosine of the photo to "a photo of CONCEPT",
  mapped linearly from `text_low` (0) to `text_high` (1).
The photo's score for the concept is the noisy OR of the sources, 1 - prod(1 - s). How the constants
were chosen is in `Calibration` and the README ("How search scores photos").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelsift.imaging import scene
from pixelsift.library.rows import DetectionHit, LabelHit, Term
from pixelsift.models.vocabulary import WORD, Vocabulary

CLASSIFIER, DETECTOR, LABELER, TEXT_IMAGE = "classifier", "detector", "labeler", "text-image"
SCENE = scene.SOURCE  # the scene regions (sky, grass, tree, road): `imaging.scene`
TEXT = "text"  # the text read in the photo (`index --ocr`)
_EPS = 1e-6


@dataclass(frozen=True)
class Calibration:
    """The fusion's constants. The Platt coefficients were fitted by logistic regression on the
    development library of `benchmarks/bench_search.py` (`--calibrate` prints them: one row per photo
    and concept, relevant or not); the other constants were set on the same library, and
    `min_score` is the default threshold below which results are not listed."""

    classifier_a: float = 1.145  # bench_search.py --calibrate: 2,540 pairs, 157 relevant
    classifier_b: float = 1.056
    detector_a: float = 1.236  # the same run: 165 pairs with a box (SSD-MobileNet-v2)
    detector_b: float = 0.022
    small_box: float = 0.01  # boxes under 1% of the photo count less (sqrt of their share of it)
    agree_mass: float = 0.015  # mass on a detected class (times sqrt(its classes)) that confirms it
    big_box: float = 0.1  # a box this share of the photo or more is the classifier's main subject
    confidence_top: int = 5  # "sure of something else": the mass of its top 5 classes outside the class
    text_low: float = 0.18
    text_high: float = 0.30
    min_score: float = 0.25  # above every absent concept's best photo on that library (0.20)
    # several concepts: each concept besides the main one multiplies the main concept's score by
    # floor + (1 - floor) * its own score (see `combine`)
    context_floor: float = 0.5


DEFAULT = Calibration()


@dataclass(frozen=True)
class Ranking:
    """Photos ranked for one query: per photo its score, its tier (2: it shows every concept of an
    alternative, 1: it shows the main concept only, 0: not listed), the alternative that ranked it, and
    `gate`: its best score of what must reach the minimum for it to be listed (the main concept's;
    with `match_all`, the weakest concept's)."""

    score: np.ndarray
    tier: np.ndarray
    group: np.ndarray
    gate: np.ndarray


def combine(
    groups: Sequence[np.ndarray], mains: Sequence[int], min_score: float, floor: float, match_all: bool
) -> Ranking:
    """Rank photos for a query of alternatives (OR) of concepts (AND). `groups[g]` holds one row of
    scores per concept of alternative g (concepts x photos), `mains[g]` the row of its main concept.

    - A photo shows a concept when its score for it reaches `min_score`.
    - Combined score of an alternative: main * prod over the other concepts of (floor + (1 - floor) *
      their score). A missing context word costs at most a factor `floor`; a present one costs little.
    - Photos that show every concept of an alternative come first (tier 2), by combined score; then
      photos that show the main concept (tier 1): a weak context word ranks but never empties the
      result. `match_all` (`--all`) lists tier 2 only, scored by its weakest concept (a strict AND).
    - An alternative of one concept scores that concept; OR takes each photo's best alternative."""
    scores, tiers, gates = [], [], []
    for rows, main in zip(groups, mains, strict=True):
        weakest = rows.min(axis=0)
        shows_all = weakest >= min_score
        if match_all:
            scores.append(weakest)
            tiers.append(np.where(shows_all, 2, 0))
            gates.append(weakest)
            continue
        others = np.delete(rows, main, axis=0)
        combined = rows[main] * np.prod(floor + (1.0 - floor) * others, axis=0)
        scores.append(combined)
        tiers.append(np.where(shows_all, 2, np.where(rows[main] >= min_score, 1, 0)))
        gates.append(rows[main])
    score, tier = np.stack(scores), np.stack(tiers)
    best = np.argmax(tier * 2.0 + score, axis=0)  # the best tier first, then the best score
    columns = np.arange(score.shape[1])
    gate = np.stack(gates).max(axis=0) if len(columns) else np.zeros(0)
    return Ranking(score[best, columns], tier[best, columns], best, gate)


def _platt(p: np.ndarray | float, a: float, b: float) -> Any:
    p = np.clip(p, _EPS, 1 - _EPS)
    return 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))


@dataclass(frozen=True)
class Evidence:
    """Why a photo matched a concept: one source's contribution."""

    concept: str  # the query's concept ("dog")
    source: str  # "classifier", "detector", "labeler", "scene", "text-image" or "text"
    label: str  # what carried it: the class ("German shepherd"), detected class, custom label, line of text
    score: float  # its calibrated score, as fused
    raw: float  # the source's own number: probability, box score, label probability, cosine

    def to_dict(self) -> dict[str, Any]:
        return {
            "concept": self.concept,
            "source": self.source,
            "label": self.label,
            "score": round(self.score, 6),
            "raw": round(self.raw, 6),
        }

    def describe(self) -> str:
        if self.source == TEXT:
            return f'text: "{self.label}"'
        what = {DETECTOR: "detected ", LABELER: "labelled ", SCENE: "scene: "}.get(self.source, "")
        return f"{self.concept}: {what}{self.label} {self.score:.2f}"


class Probabilities:
    """The classifier's probabilities of the index's photos: ids and an (N, classes) matrix."""

    def __init__(
        self, ids: np.ndarray, matrix: np.ndarray, categories: Sequence[str], complete: bool = False
    ):
        self.ids = np.asarray(ids, np.int64)
        self.matrix = matrix
        self.categories = list(categories)
        self.complete = complete  # every readable photo of the index has a row (none needs its top 5)
        self.row = {int(i): r for r, i in enumerate(self.ids.tolist())}

    @classmethod
    def empty(cls, categories: Sequence[str] = ()) -> Probabilities:
        return cls(np.zeros(0, np.int64), np.zeros((0, max(1, len(categories))), np.float32), categories)

    def of(self, photo_id: int) -> np.ndarray | None:
        r = self.row.get(photo_id)
        return None if r is None else np.asarray(self.matrix[r])


@dataclass
class TermScores:
    """A concept's fused score for every photo with any evidence, and what is needed to explain it."""

    term: Term
    ids: np.ndarray
    scores: np.ndarray
    class_weights: np.ndarray | None
    detections: dict[int, list[tuple[DetectionHit, float]]]  # photo -> (hit, its calibrated score)
    labels: dict[int, list[tuple[LabelHit, float]]]
    text: dict[int, tuple[float, float]]  # photo -> (cosine, calibrated)
    stored_top: dict[int, tuple[str, float]]  # photo without probabilities -> (best class, mass)


class Fusion:
    """Scores query concepts over one index's evidence."""

    def __init__(self, vocab: Vocabulary, probs: Probabilities, calibration: Calibration = DEFAULT):
        self.vocab = vocab
        self.probs = probs
        self.cal = calibration
        # the classifier's classes are ImageNet's (else its classes are searched by name, as labels)
        self.imagenet = len(probs.categories) == len(vocab.imagenet) and probs.matrix.shape[1] == len(
            vocab.imagenet
        )
        self._class_sets: dict[str, tuple[np.ndarray, np.ndarray | None] | None] = {}

    # --------------------------------------------------------------------------------- the sources
    def calibrated(self, mass: np.ndarray | float) -> Any:
        """The classifier's concept mass, Platt-scaled (`Calibration.classifier_a`, `_b`)."""
        return _platt(mass, self.cal.classifier_a, self.cal.classifier_b)

    def class_weights(self, term: Term) -> np.ndarray | None:
        if not self.imagenet or not term.concepts:
            return None
        weights = np.array([term.concepts.get(w, 0.0) for w in self.vocab.imagenet], np.float32)
        return weights if weights.any() else None

    def classifier_mass(self, weights: np.ndarray | None) -> np.ndarray:
        if weights is None or not len(self.probs.ids):
            return np.zeros(len(self.probs.ids), np.float32)
        return np.minimum(1.0, np.asarray(self.probs.matrix @ weights, np.float64))

    def _detected_classes(self, label: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """For a detector class the classifier knows: (the ImageNet classes it covers, None = every other
        class can contradict it); None when the classifier cannot judge it (people, horses: ImageNet
        has almost no classes for them, and a photo of a dog with people in it is still a dog photo
        to the classifier)."""
        key = label.lower()
        if key not in self._class_sets:
            found = None
            synset = self.vocab.coco.get(key)
            if self.imagenet and synset is not None:
                covered = self.vocab.covers.get(synset, set())
                own = np.array([w in covered for w in self.vocab.imagenet])
                if self.vocab.known_to_classifier(key):
                    found = (own, None)
            self._class_sets[key] = found
        return self._class_sets[key]

    def agreement(self, label: str, probs: np.ndarray | None, area: float | None = None) -> float:
        """How far the classifier lets a detection of `label` stand (1 = no objection):
        1 - elsewhere * (1 - confirmed) * prominence, where `elsewhere` is the classifier's mass on
        its top classes that rule the detected class out, `confirmed` = min(1, mass on the detected
        class / agree_mass) ** 2 (0 for a class it has no classes for) and `prominence` =
        min(1, area / big_box): the classifier sees the main subject, so its silence about a small
        object in the background says nothing."""
        sets = self._detected_classes(label)
        if sets is None or probs is None:
            return 1.0
        own, rivals = sets
        return self._agreement(own, rivals, probs, area)

    def confirmation(self, weights: np.ndarray | None, probs: np.ndarray | None, area: float | None) -> float:
        """How far the classifier confirms a word's own classes (`weights`) in a photo, for a detection
        of the class above the word ("motorcycle" for "motorbike"): `agreement`'s rule with the word's
        classes in place of the detected class's. Nothing without the classifier's probabilities."""
        if weights is None or probs is None:
            return 0.0
        return self._agreement(weights > 0, None, probs, area)

    def _agreement(
        self, own: np.ndarray, rivals: np.ndarray | None, probs: np.ndarray, area: float | None
    ) -> float:
        against = np.where(own, 0.0, probs) if rivals is None else np.where(rivals, probs, 0.0)
        top = np.partition(against, -self.cal.confidence_top)[-self.cal.confidence_top :]
        elsewhere = float(min(1.0, top.sum()))
        return 1.0 - elsewhere * (1.0 - self._confirmed(own, probs)) * self._prominence(area)

    def _confirmed(self, own: np.ndarray, probs: np.ndarray) -> float:
        """min(1, the classifier's mass on the classes `own` / agree_mass x sqrt(their number)) ** 2; 0
        for no classes. A photo puts more mass on 118 dog breeds by chance than on 2 kinds of bicycle."""
        if not own.any():
            return 0.0
        needed = self.cal.agree_mass * np.sqrt(max(1, int(own.sum())))
        return min(1.0, float(probs[own].sum()) / needed) ** 2

    def _prominence(self, area: float | None) -> float:
        """min(1, a box's share of the photo / big_box): how much the box is the photo's main subject
        (1 when its size is unknown)."""
        return 1.0 if area is None else min(1.0, max(area, 0.0) / self.cal.big_box)

    def explained_away(
        self, term: Term, weights: np.ndarray | None, prominent: Sequence[DetectionHit]
    ) -> dict[int, float]:
        """photo -> the share of the classifier's score for a thing (`term`) that stands, where the
        detector found something else and the classifier agrees: a big, sure box of a class the
        classifier has classes for and puts its mass on ("cat 0.99" on a cat photo whose classifier also
        leans to a Border collie: the dog mass is the classifier's confusion, not a dog). The share is
        1 - box score (Platt-scaled) * confirmed * prominence, `agreement`'s terms for that box's class.
        Only for words that name things the detector boxes itself (its silence says nothing about a
        lemon beside an orange, or a kangaroo: it has no class for them); never for a box of a class the
        word covers."""
        if weights is None or term.how != WORD or not term.detection_names:
            return {}
        names = {k.lower() for k in term.detection_names}
        own = weights > 0
        # One class at a time, its boxes at once: a library of 100,000 photos has that many big boxes.
        by_class: dict[str, list[DetectionHit]] = defaultdict(list)
        for box in prominent:
            if box.area is not None and box.photo_id in self.probs.row:  # unknown size: no main subject
                by_class[box.label.lower()].append(box)
        photo_ids: list[np.ndarray] = []
        factors: list[np.ndarray] = []
        for label, boxes in by_class.items():
            sets = None if label in names else self._detected_classes(label)
            if sets is None or (sets[0] & own).any():
                continue
            rows = np.fromiter((self.probs.row[b.photo_id] for b in boxes), np.int64, len(boxes))
            sure = _platt(np.array([b.score for b in boxes]), self.cal.detector_a, self.cal.detector_b)
            mass = np.asarray(self.probs.matrix[rows][:, sets[0]], dtype=np.float64).sum(axis=1)
            needed = self.cal.agree_mass * np.sqrt(max(1, int(sets[0].sum())))
            confirmed = np.minimum(1.0, mass / needed) ** 2
            area = np.array([b.area for b in boxes], dtype=np.float64)
            prominence = np.minimum(1.0, np.maximum(area, 0.0) / self.cal.big_box)
            photo_ids.append(np.array([b.photo_id for b in boxes], np.int64))
            factors.append(1.0 - sure * confirmed * prominence)
        if not photo_ids:
            return {}
        ids, values = np.concatenate(photo_ids), np.concatenate(factors)
        order = np.lexsort((values, ids))  # per photo, its smallest factor first
        first = np.ones(len(ids), bool)
        first[1:] = ids[order][1:] != ids[order][:-1]
        return dict(zip(ids[order][first].tolist(), values[order][first].tolist(), strict=True))

    def detector_calibrated(self, score: float) -> float:
        """A box's score, Platt-scaled (`Calibration.detector_a`, `_b`)."""
        return float(_platt(score, self.cal.detector_a, self.cal.detector_b))

    def detection_score(self, hit: DetectionHit, weight: float) -> float:
        score = self.detector_calibrated(hit.score) * weight
        if hit.area is not None and hit.area < self.cal.small_box:
            score *= float(np.sqrt(max(hit.area, 0.0) / self.cal.small_box))
        return score * self.agreement(hit.label, self.probs.of(hit.photo_id), hit.area)

    def text_score(self, cosine: float) -> float:
        span = self.cal.text_high - self.cal.text_low
        return float(np.clip((cosine - self.cal.text_low) / span, 0.0, 1.0))

    # ----------------------------------------------------------------------------------- fusing
    def score(
        self,
        term: Term,
        detections: Sequence[DetectionHit] = (),
        labels: Sequence[LabelHit] = (),
        text: tuple[np.ndarray, np.ndarray] | None = None,
        stored_top: Sequence[LabelHit] = (),
        prominent: Sequence[DetectionHit] = (),
    ) -> TermScores:
        """The concept's score for every photo: the noisy OR of its sources. `stored_top`: the
        classifier's mass from the stored top classes, for photos that have no probabilities yet;
        `prominent`: the big, sure boxes of every class (`explained_away`)."""
        weights = self.class_weights(term)
        mass = self.classifier_mass(weights)
        scores = np.where(mass > 0, self.calibrated(mass), 0.0).astype(np.float64)
        others: dict[int, float] = defaultdict(float)  # photo -> 1 - prod(1 - s) of the other sources
        top: dict[int, tuple[str, float]] = {}
        for stored in stored_top:
            if stored.photo_id not in self.probs.row and stored.score > 0:
                top[stored.photo_id] = (stored.label, stored.score)
                others[stored.photo_id] = float(self.calibrated(stored.score))
        by_photo: dict[int, list[tuple[DetectionHit, float]]] = defaultdict(list)
        names = {k.lower(): w for k, w in term.detection_names.items()}
        confirm = {name.lower() for name in term.confirm}
        for box in detections:
            label = box.label.lower()
            weight = names.get(label, 0.0)
            if weight > 0:
                score = self.detection_score(box, weight)
                if label in confirm:  # a class above the word: as far as the classifier sees the word
                    score *= self.confirmation(weights, self.probs.of(box.photo_id), box.area)
                by_photo[box.photo_id].append((box, score))
        for photo_id, boxes in by_photo.items():
            others[photo_id] = 1.0 - float(np.prod([1.0 - s for _, s in boxes]))
        for photo_id, factor in self.explained_away(term, weights, prominent).items():
            r = self.probs.row.get(photo_id)
            if r is not None and photo_id not in by_photo:  # a box of the thing itself: no confusion
                scores[r] *= factor
        label_weights = {k.lower(): w for k, w in term.label_names.items()}
        labelled: dict[int, list[tuple[LabelHit, float]]] = defaultdict(list)
        for given in labels:
            weight = label_weights.get(given.label.lower(), 0.0)
            if weight > 0:
                labelled[given.photo_id].append((given, min(1.0, given.score) * weight))
        for photo_id, given_labels in labelled.items():
            best = max(s for _, s in given_labels)
            others[photo_id] = 1.0 - (1.0 - others[photo_id]) * (1.0 - best)
        texts: dict[int, tuple[float, float]] = {}
        if text is not None:
            for photo_id, cosine in zip(text[0].tolist(), text[1].tolist(), strict=True):
                calibrated = self.text_score(cosine)
                if calibrated > 0:
                    texts[int(photo_id)] = (float(cosine), calibrated)
                    others[int(photo_id)] = 1.0 - (1.0 - others[int(photo_id)]) * (1.0 - calibrated)
        extra_ids, extra_scores = [], []
        for photo_id, other in others.items():
            r = self.probs.row.get(photo_id)
            if r is None:
                extra_ids.append(photo_id)
                extra_scores.append(other)
            else:
                scores[r] = 1.0 - (1.0 - scores[r]) * (1.0 - other)
        ids = np.concatenate([self.probs.ids, np.array(extra_ids, np.int64)])
        all_scores = np.concatenate([scores, np.array(extra_scores, np.float64)])
        return TermScores(term, ids, all_scores, weights, dict(by_photo), dict(labelled), texts, top)

    def evidence(self, scored: TermScores, photo_id: int) -> list[Evidence]:
        """What made `photo_id` match the concept, strongest first (sources that gave ~0 left out)."""
        found: list[Evidence] = []
        concept = scored.term.text
        probs = self.probs.of(photo_id)
        if probs is not None and scored.class_weights is not None:
            contributions = probs * scored.class_weights
            mass = float(min(1.0, contributions.sum()))
            if mass > 0:
                best = int(np.argmax(contributions))
                calibrated = float(self.calibrated(mass))
                found.append(Evidence(concept, CLASSIFIER, self.probs.categories[best], calibrated, mass))
        elif photo_id in scored.stored_top:
            label, mass = scored.stored_top[photo_id]
            calibrated = float(self.calibrated(mass))
            found.append(Evidence(concept, CLASSIFIER, label, calibrated, mass))
        for box, score in sorted(scored.detections.get(photo_id, []), key=lambda t: -t[1])[:1]:
            found.append(Evidence(concept, DETECTOR, box.label, score, box.score))
        for given, score in sorted(scored.labels.get(photo_id, []), key=lambda t: -t[1])[:1]:
            source = SCENE if given.source == scene.SOURCE else LABELER
            found.append(Evidence(concept, source, given.label, score, given.score))
        if photo_id in scored.text:
            cosine, calibrated = scored.text[photo_id]
            found.append(Evidence(concept, TEXT_IMAGE, concept, calibrated, cosine))
        return sorted((e for e in found if e.score >= 0.005), key=lambda e: -e.score)
