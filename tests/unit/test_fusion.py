"""Fusing the evidence: a detection the classifier contradicts counts for less; small boxes count less;
what the classifier cannot see (people) it does not contradict; sources add up as a noisy OR."""

from __future__ import annotations

import numpy as np
import pytest

from pixelsift.library.fusion import CLASSIFIER, DETECTOR, Fusion, Probabilities
from pixelsift.library.rows import DetectionHit, Term
from pixelsift.models.registry import get_model_spec
from pixelsift.models.vocabulary import Vocabulary

CATEGORIES = get_model_spec("efficientnet_lite0").categories
CHEETAH, GOLDFINCH, TABBY = (
    CATEGORIES.index("cheetah"),
    CATEGORIES.index("goldfinch"),
    CATEGORIES.index("tabby"),
)


def distribution(**classes: float) -> np.ndarray:
    """A probability vector: the named class indices get their share, the rest is spread evenly."""
    p = np.zeros(1000, np.float32)
    for index, share in classes.items():
        p[int(index.lstrip("c"))] = share
    p[p == 0] = (1.0 - p.sum()) / np.count_nonzero(p == 0)
    return p


@pytest.fixture(scope="module")
def fusion() -> Fusion:
    vocab = Vocabulary.load()
    matrix = np.stack(
        [
            distribution(**{f"c{CHEETAH}": 0.9}),  # 1: a cheetah, the classifier is sure
            distribution(**{f"c{GOLDFINCH}": 0.8}),  # 2: a bird
            distribution(),  # 3: the classifier has no idea (flat)
            distribution(**{f"c{TABBY}": 0.5}),  # 4: a cat, half sure
        ]
    )
    return Fusion(vocab, Probabilities(np.array([1, 2, 3, 4]), matrix, CATEGORIES))


def term(fusion: Fusion, word: str) -> Term:
    meaning = fusion.vocab.lookup(word)
    assert meaning is not None
    return Term(word, fusion.vocab.concept_weights(meaning), fusion.vocab.coco_weights(meaning), {})


def scores(fusion: Fusion, word: str, *hits: DetectionHit) -> dict[int, float]:
    scored = fusion.score(term(fusion, word), hits)
    return dict(zip(scored.ids.tolist(), scored.scores.tolist(), strict=True))


def test_a_detection_the_classifier_contradicts_is_demoted(fusion: Fusion) -> None:
    boxes = [DetectionHit(i, "bird", 0.99, 0.4) for i in (1, 2, 3)]
    bird = scores(fusion, "bird", *boxes)
    assert bird[1] < 0.2, "'bird 0.99' on a photo the classifier is sure shows a cheetah"
    assert bird[2] > 0.95, "confirmed by the classifier"
    assert bird[3] > 0.9, "a classifier that is sure of nothing contradicts nothing"


def test_what_the_classifier_cannot_see_it_does_not_contradict(fusion: Fusion) -> None:
    person = scores(fusion, "person", DetectionHit(1, "person", 0.9, 0.4))
    assert person[1] > 0.85, "ImageNet has no classes for people: a person beside a cheetah stands"


def test_a_tiny_box_counts_less_than_a_big_one(fusion: Fusion) -> None:
    big = scores(fusion, "person", DetectionHit(3, "person", 0.6, 0.2))[3]
    tiny = scores(fusion, "person", DetectionHit(3, "person", 0.6, 0.0004))[3]
    assert tiny < 0.5 * big


def test_a_small_object_in_the_background_is_not_contradicted_by_the_main_subject(fusion: Fusion) -> None:
    background = scores(fusion, "bird", DetectionHit(1, "bird", 0.9, 0.02))[1]
    whole = scores(fusion, "bird", DetectionHit(1, "bird", 0.9, 0.5))[1]
    assert background > 2 * whole, "the classifier looked at the cheetah, not at the bird behind it"


def test_sources_combine_as_a_noisy_or(fusion: Fusion) -> None:
    cat_alone = scores(fusion, "cat")[4]
    cat_and_box = scores(fusion, "cat", DetectionHit(4, "cat", 0.6, 0.5))[4]
    box_alone = fusion.detection_score(DetectionHit(4, "cat", 0.6, 0.5), 1.0)
    assert cat_and_box == pytest.approx(1 - (1 - cat_alone) * (1 - box_alone))
    assert cat_and_box > max(cat_alone, box_alone)


def test_the_classifier_sums_over_every_class_of_the_concept(fusion: Fusion) -> None:
    weights = fusion.class_weights(term(fusion, "cat"))
    assert weights is not None
    mass = fusion.classifier_mass(weights)
    assert mass[2] == pytest.approx(weights.sum() / 1000, rel=1e-4), "each of the 1000 classes counts"
    assert mass[3] > 0.5, "the tabby's half plus the other cat classes"
    assert mass[0] == pytest.approx(0.45, abs=0.01), "a cheetah is a cat in the word's second sense (0.5)"


def test_evidence_names_the_source_and_what_carried_it(fusion: Fusion) -> None:
    scored = fusion.score(term(fusion, "bird"), [DetectionHit(2, "bird", 0.97, 0.4)])
    evidence = fusion.evidence(scored, 2)
    assert {e.source for e in evidence} == {CLASSIFIER, DETECTOR}
    classifier = next(e for e in evidence if e.source == CLASSIFIER)
    assert classifier.label == "goldfinch" and classifier.concept == "bird"
    assert classifier.raw > 0.8 and 0 < classifier.score <= 1
    assert evidence == sorted(evidence, key=lambda e: -e.score)


def test_a_detection_of_the_class_above_a_word_counts_as_far_as_the_classifier_sees_the_word() -> None:
    vocab = Vocabulary.load()
    persian = CATEGORIES.index("Persian cat")
    matrix = np.stack([distribution(**{f"c{TABBY}": 0.7}), distribution(**{f"c{persian}": 0.9})])
    fusion = Fusion(vocab, Probabilities(np.array([1, 2]), matrix, CATEGORIES))
    meaning = vocab.lookup("tabby")
    assert meaning is not None and vocab.coco_above(meaning) == {"cat": 1.0}
    tabby = Term("tabby", vocab.concept_weights(meaning), {"cat": 1.0}, {}, confirm=frozenset({"cat"}))
    boxes = [DetectionHit(1, "cat", 0.95, 0.5), DetectionHit(2, "cat", 0.95, 0.5)]
    scored = fusion.score(tabby, boxes)
    box_score = {p: s for p, hits in scored.detections.items() for _, s in hits}
    assert box_score[1] > 0.8, "a cat box where the classifier sees a tabby: a tabby"
    assert box_score[2] < 0.15, "a cat box on a Persian is no tabby"
    plain = fusion.score(Term("cat", {}, {"cat": 1.0}, {}), boxes)
    assert {p: s for p, hits in plain.detections.items() for _, s in hits}[2] > 0.8, "but it is a cat"


def test_a_classification_a_sure_detection_of_something_else_explains_is_demoted() -> None:
    vocab = Vocabulary.load()
    collie = CATEGORIES.index("Border collie")
    egyptian = CATEGORIES.index("Egyptian cat")
    # the classifier leans to a dog, but sees the cat too; the detector boxes a big, sure cat
    matrix = np.stack([distribution(**{f"c{collie}": 0.5, f"c{egyptian}": 0.3})] * 3)
    fusion = Fusion(vocab, Probabilities(np.array([1, 2, 3]), matrix, CATEGORIES))
    dog = term(fusion, "dog")
    cat_box = [DetectionHit(1, "cat", 0.99, 0.6)]
    both = [DetectionHit(2, "cat", 0.99, 0.6)]
    alone = fusion.score(dog)
    explained = fusion.score(dog, [DetectionHit(2, "dog", 0.9, 0.3)], prominent=cat_box + both)
    before = dict(zip(alone.ids.tolist(), alone.scores.tolist(), strict=True))
    after = dict(zip(explained.ids.tolist(), explained.scores.tolist(), strict=True))
    assert before[1] > 0.5 and after[1] < 0.05, "the dog mass on a boxed cat is the classifier's confusion"
    assert after[2] > 0.8, "a dog box of its own: the photo shows a dog as well"
    assert after[3] == before[3], "no box, nothing explained"
    animal = fusion.score(term(fusion, "animal"), prominent=cat_box)
    assert dict(zip(animal.ids.tolist(), animal.scores.tolist(), strict=True))[1] > 0.5, "a cat is an animal"


def test_a_thing_the_detector_cannot_box_is_not_explained_away() -> None:
    vocab = Vocabulary.load()
    orange, lemon = CATEGORIES.index("orange"), CATEGORIES.index("lemon")
    matrix = np.stack([distribution(**{f"c{orange}": 0.5, f"c{lemon}": 0.4})])
    fusion = Fusion(vocab, Probabilities(np.array([1]), matrix, CATEGORIES))
    lemons = term(fusion, "lemon")
    assert not lemons.detection_names, "COCO has no lemon"
    scored = fusion.score(lemons, prominent=[DetectionHit(1, "orange", 0.99, 0.5)])
    assert scored.scores[0] == fusion.score(lemons).scores[0] > 0.5, "lemons beside a boxed orange stay"


def test_explaining_away_many_boxes_at_once_gives_each_photo_its_strongest_boxs_factor() -> None:
    """The per-class, all-boxes-at-once arithmetic equals the rule box by box: each photo's factor is
    the smallest 1 - sure x confirmed x prominence of its big boxes of other things."""
    vocab = Vocabulary.load()
    rng = np.random.default_rng(3)
    photos = 60
    matrix = rng.dirichlet(np.full(1000, 0.05), size=photos).astype(np.float32)
    fusion = Fusion(vocab, Probabilities(np.arange(1, photos + 1), matrix, CATEGORIES))
    labels = ["cat", "bicycle", "car", "person", "dog", "banana"]
    boxes = [
        DetectionHit(int(rng.integers(1, photos + 5)), str(rng.choice(labels)), float(rng.uniform(0.5, 1)),
                     float(rng.uniform(0.05, 0.9)))
        for _ in range(300)
    ]  # fmt: skip
    boxes.append(DetectionHit(2, "cat", 0.99, None))  # no size: never a main subject
    dog = term(fusion, "dog")
    weights = fusion.class_weights(dog)
    got = fusion.explained_away(dog, weights, boxes)
    expected: dict[int, float] = {}
    for box in boxes:
        sets = None if box.label == "dog" else fusion._detected_classes(box.label)
        probs = fusion.probs.of(box.photo_id)
        if sets is None or probs is None or box.area is None or (sets[0] & (weights > 0)).any():
            continue
        factor = 1.0 - fusion.detector_calibrated(box.score) * fusion._confirmed(sets[0], probs) * min(
            1.0, box.area / fusion.cal.big_box
        )
        expected[box.photo_id] = min(expected.get(box.photo_id, 1.0), factor)
    assert len(expected) > 20
    assert got.keys() == expected.keys()
    assert [got[k] for k in sorted(got)] == pytest.approx([expected[k] for k in sorted(expected)], abs=1e-6)
