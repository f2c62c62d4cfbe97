"""Searching a photo index: by what photos show, by example photo, by free text; results as a list or a
DataFrame.

A query ("my photos of cat", "a dog on the beach", "cat or dog", "stop signs") is parsed into concepts
(`library.query`); each concept is resolved through WordNet (`models.vocabulary`) to the ImageNet
classes and detector classes it covers ("cat": tabby, Persian, ... and detected cats), to related
classes when it names none ("beach": seashore, lakeside), and to the user's own labels, by name or
through WordNet ("cake" finds a labeler's "chocolate_cake"). Every photo gets one calibrated score per
concept, fused from all the evidence (`library.fusion`). Several concepts rank rather than filter
(`fusion.combine`): photos that show them all come first, then photos that show the query's main
concept (`main_concept`) with the rest weak; `Filters.match_all` (`--all`) lists the first kind only.
"Or" takes each photo's best alternative. A photo whose main concept scores below the minimum (default
`fusion.DEFAULT.min_score`) is not listed; each result says which evidence made it match and which
concepts it does not clearly show (`SearchResult.weak`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.paths import data_frame
from pixelsift.core.sequences import chunks
from pixelsift.errors import UsageError
from pixelsift.library import textmatch
from pixelsift.library.fusion import (
    DEFAULT,
    TEXT,
    Calibration,
    Evidence,
    Fusion,
    Probabilities,
    TermScores,
    combine,
)
from pixelsift.library.query import Query, parse
from pixelsift.library.rows import DetectionHit, Filters, Term
from pixelsift.library.store import LibraryStore
from pixelsift.library.textmatch import TextMatch
from pixelsift.models.vocabulary import (
    RELATED,
    WORD,
    Vocabulary,
    anchors,
    base_forms,
    is_english_word,
    normalise,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

__all__ = ["Filters", "SearchResult", "SearchResults", "Searcher", "Term"]

SCENE = "scene"  # `Term.how` of a word searched as a scene region (`imaging.scene`): context, not the subject
PROMINENT_SCORE = 0.5  # boxes at least this sure (and `Calibration.big_box` big) say what a photo is of
CONTAINER = "n03094503"  # WordNet's container: "a cup of coffee" is read as coffee
TEXT_IN_QUERY = 0.8  # the weight of the text read in a photo in a plain query's score


@dataclass
class SearchResult:
    """One photo that matched: where it is, how well it matched, and what it shows."""

    id: int  # stable photo id in the index
    path: str  # full path (library root + relative path)
    relative_path: str
    score: float
    labels: list[str] = field(default_factory=list)  # the photo's labels, most confident first
    taken_at: str | None = None
    camera: str | None = None
    matched: list[Evidence] = field(default_factory=list)  # why it matched, per concept, strongest first
    missing: bool = False  # the file is not on disk any more (deleted, or the folder moved) since indexing
    weak: list[str] = field(default_factory=list)  # the query's concepts it does not clearly show

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a result (`RESULT_FIELDS`, in that order): Python's `to_dicts`, the CLI's
        `--format json` and the web API give it alike (the API with `path` relative to the library)."""
        return {
            "path": self.path,
            "score": self.score,
            "matched": [e.to_dict() for e in self.matched],
            "labels": self.labels,
            "id": self.id,
            "relative_path": self.relative_path,
            "taken_at": self.taken_at,
            "camera": self.camera,
            "missing": self.missing,
            "weak": self.weak,
        }

    def matched_text(self) -> str:
        """ "dog: German shepherd 0.52; beach: seashore 0.31" (the strongest evidence per concept)."""
        best: dict[str, Evidence] = {}
        for e in self.matched:
            best.setdefault(e.concept, e)
        text = "; ".join(e.describe() for e in best.values())
        if self.weak:
            text += ("; " if text else "") + "not clearly " + ", ".join(self.weak)
        return text


RESULT_FIELDS = (
    "path",
    "score",
    "matched",
    "labels",
    "id",
    "relative_path",
    "taken_at",
    "camera",
    "missing",
    "weak",
)


def main_concept(group: list[Term]) -> int:
    """The concept a group of concepts is about: the first that names things photos are indexed by
    ("dog" in "a dog on the beach", "cat" in "a cat on a bed"), before words that name no class and are
    searched through their neighbours ("beach") or name a scene region ("street", "grass"); the first
    concept when all are such words."""
    return next((i for i, t in enumerate(group) if t.how not in (RELATED, SCENE)), 0)


class SearchResults(list[SearchResult]):
    """Results, best first. `how` says how the query was understood; `message` says why nothing was
    found (the query was not understood, filters removed every match, nothing scored high enough);
    `notes` what was left out of a query that still answered ("ignored 'red': not a thing photos are
    indexed by")."""

    def __init__(
        self,
        results: list[SearchResult] = (),  # type: ignore[assignment]
        query: str = "",
        how: str = "",
        message: str = "",
        notes: list[str] | None = None,
    ):
        super().__init__(results)
        self.query, self.how, self.message = query, how, message
        self.notes = list(notes or [])

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]

    def to_pandas(self) -> pd.DataFrame:
        """One row per photo: path, score, matched (the evidence, as text), labels (joined by ", "), id,
        relative_path, taken_at, camera."""
        rows = [{**r.to_dict(), "matched": r.matched_text(), "labels": ", ".join(r.labels)} for r in self]
        columns = ["path", "score", "matched", "labels", "id", "relative_path", "taken_at", "camera"]
        return data_frame({c: [row.get(c) for row in rows] for c in columns})


class Searcher:
    """Understands queries and runs them against an open index."""

    def __init__(self, store: LibraryStore, root: Path, probs: Callable[[], Probabilities] | None = None):
        self.store = store
        self.root = root
        self.vocab = Vocabulary.load()
        self._probs = probs or (lambda: Probabilities.empty())
        self._custom: tuple[int, dict[str, set[str]]] | None = None  # (write sequence number, labels)
        self._undetected: tuple[int, int] | None = None  # (write sequence number, photos without detection)
        self._boxes: tuple[int, float, list[DetectionHit]] | None = None  # (sequence, area, prominent boxes)
        # (write sequence number, words a query can name, the library's own labels among them)
        self._known: tuple[int, list[str], set[str]] | None = None
        self._text_words: tuple[int, set[str]] | None = None  # (sequence, the words read in photos)

    # ------------------------------------------------------------------------------ understanding
    def understand(self, query: str) -> Query:
        """The query as concepts (see `library.query`); a clear misspelling is searched as the word it
        misspells (`correction`)."""
        return parse(query, self._term, self._holds, self.correction, self._is_name)

    def _is_name(self, phrase: str) -> bool:
        """Whether a phrase is a name of WordNet's ("spring rolls": spring roll), in any of its forms."""
        return any(form in anchors() for form in self.vocab.forms(phrase))

    def _known_words(self) -> tuple[list[str], set[str]]:
        """Every word a query can name: the vocabulary (classes, their synonyms and kinds, place and
        scene words), the library's own labels and the detector's classes; and those labels alone (read
        again only after the index changed)."""
        seq = self.store.seq()
        if self._known is None or self._known[0] != seq:
            in_library = {normalise(n) for n in self.store.label_names()}
            self._known = (seq, sorted({*self.vocab.words, *self.vocab.related, *in_library}), in_library)
        return self._known[1], self._known[2]

    def correction(self, word: str) -> str | None:
        """The known word `word` is clearly a misspelling of, or None. Candidates are the known words
        within an edit distance of 1 (a word of up to 4 letters) or 2 (longer), a swap of two letters
        counting as one edit (RapidFuzz's optimal string alignment). They are ranked by that distance,
        then by being a label of this library's photos, then by the fewest letters replaced (a letter
        left out or doubled before a wrong one: "piza" is pizza before pika); a tie on all three is
        ambiguous and corrects nothing. A word that means something itself is never corrected (only
        words that resolve to nothing are asked about), nor is a word of English that names nothing
        photos are indexed by ("fluffy", "beech": `is_english_word`)."""
        from rapidfuzz import process  # with the first search that needs it
        from rapidfuzz.distance import OSA, Indel

        word = normalise(word)
        forms = list(dict.fromkeys([word, *base_forms(word)]))  # "elefants": the singular is closer
        if len(word) < 3 or not word.replace(" ", "").isalpha():
            return None
        if any(f in anchors() for f in forms) or is_english_word(word):
            return None  # a real word ("beech", "fluffy") that names nothing here is no misspelling
        limit = 1 if len(word) <= 4 else 2
        known_words, in_library = self._known_words()
        ranks: dict[str, tuple[int, int, int, int]] = {}
        for order, form in enumerate(forms):  # the word as typed before its base forms ("hors": horse)
            for known, distance, _ in process.extract(
                form, known_words, scorer=OSA.distance, score_cutoff=limit, limit=8
            ):
                rank = (int(distance), known not in in_library, int(Indel.distance(form, known)), order)
                ranks[known] = min(ranks.get(known, rank), rank)
        if not ranks:
            return None
        best = min(ranks.values())
        candidates = [k for k, r in ranks.items() if r == best]
        return candidates[0] if len(candidates) == 1 else None

    def _holds(self, term: Term) -> bool:
        """Whether a concept is a container, WordNet's first sense of the word ("cup", "glass", "bowl")."""
        return term.how == WORD and CONTAINER in self.vocab.label_synsets(term.text)

    def _custom_synsets(self) -> dict[str, set[str]]:
        """custom label name -> the WordNet synsets it stands for, with their ancestors (read again
        after the index changed: a long-running server sees a new labeler's labels)."""
        seq = self.store.seq()
        if self._custom is None or self._custom[0] != seq:
            names = self.store.custom_label_names()
            self._custom = (seq, {name: self.vocab.label_synsets(name) for name in names})
        return self._custom[1]

    def _term(self, text: str) -> Term | None:
        text = normalise(text)
        if not text or len(text) < 2 or text.isdigit():
            return None
        forms = list(dict.fromkeys([self.vocab.irregular.get(text, text), *base_forms(text)]))
        # Custom class names are folder names: "blue_triangle" is found as "blue triangle(s)" too.
        spellings = dict.fromkeys(c for f in forms for c in (f, f.replace(" ", "_")))
        labels = {c: 1.0 for c in spellings if self.store.has_label(c)}
        named = {f: 1.0 for f in forms if self.store.has_detection(f)}  # detected classes by this name
        detections = dict(named)
        meaning = self.vocab.lookup(text, related=True)
        concepts: dict[str, float] = {}
        how = "label" if labels else WORD
        via: tuple[str, ...] = ()
        confirm: set[str] = set()
        if meaning is not None:
            concepts = self.vocab.concept_weights(meaning)
            for name, weight in self.vocab.coco_weights(meaning).items():
                detections[name] = max(detections.get(name, 0.0), weight)
            if concepts:  # the classifier can confirm a detection class above the word ("motorbike")
                for name, weight in self.vocab.coco_above(meaning).items():
                    if name not in detections:
                        detections[name] = weight
                        confirm.add(name)
            senses = dict(meaning.synsets)
            for label, synsets in self._custom_synsets().items():  # "cake" finds "chocolate_cake"
                weight = max((w for s, w in senses.items() if s in synsets), default=0.0)
                if weight > labels.get(label, 0.0):
                    labels[label] = weight
            if meaning.how != WORD:
                how = meaning.how
                via = tuple(self.vocab.names(s)[0] for s, _ in meaning.synsets)
        # "grass", "lawn", "street": scene regions, once the index has looked for them
        regions = {r: w for r, w in self.vocab.scene_regions(text).items() if self.store.has_label(r)}
        if regions and (meaning is None or meaning.how != WORD):
            # the region itself is seen in the photo: what WordNet puts beside the word ("tree": orange,
            # acorn) would only add photos that do not show it
            concepts, how, via = {}, SCENE, ()
            detections, confirm = dict(named), set()
            for region, weight in regions.items():
                labels[region] = max(labels.get(region, 0.0), weight)
        if not (labels or detections or concepts):
            return None
        name = meaning.word if meaning is not None and meaning.how == WORD and not labels else text
        return Term(name, concepts, detections, labels, how, via, frozenset(confirm))

    def suggestions(self, words: list[str], limit: int = 5) -> list[str]:
        """Known labels closest to the words not understood: the library's own labels first."""
        in_library = sorted(self.store.label_names())
        lowered = {label.lower(): label for label in in_library}
        found: list[str] = []
        for word in words:
            found += [lowered[m] for m in difflib.get_close_matches(word, list(lowered), n=limit, cutoff=0.6)]
            if len(found) < limit:
                cutoff = 0.6 if len(word) <= 4 else 0.75  # one typo in a short word is a big share of it
                found += difflib.get_close_matches(word, list(self.vocab.words), n=limit, cutoff=cutoff)
        return list(dict.fromkeys(found))[:limit]

    def not_understood(self, query: Query) -> str:
        if not query.unknown:
            return (
                f"the query {query.text!r} names nothing to look for; say what the photos show "
                '("photos of cats", "a dog on the beach")'
            )
        words = query.unknown
        message = f"no photo label matches {', '.join(repr(w) for w in words)}"
        suggestions = self.suggestions(words)
        if suggestions:
            message += f"; nearest known labels: {', '.join(suggestions)}"
        message += (
            '. Search by what photos show ("cat", "dog on the beach", "food"); for free text, '
            "install a text-image model: pip install 'pixelsift[clip]', pixelsift models fetch "
            "clip_vit_b32, then pixelsift index again"
        )
        return message

    # ---------------------------------------------------------------------------------- word search
    def search(
        self,
        query: Query,
        n: int,
        filters: Filters,
        text_scores: Callable[[Term], tuple[np.ndarray, np.ndarray]] | None = None,
        calibration: Calibration = DEFAULT,
    ) -> SearchResults:
        """The best `n` photos for an understood query, with what made each match."""
        probs = self._probs()
        fusion = Fusion(self.vocab, probs, calibration)
        prominent = self._prominent(calibration.big_box)
        scored: dict[str, TermScores] = {}
        boxes: dict[str, list[DetectionHit]] = {}
        for term in query.terms:
            boxes[term.text] = self.store.matching_detections(term.detection_names)
            scored[term.text] = fusion.score(
                term,
                boxes[term.text],
                self.store.matching_labels(term.label_names),
                text_scores(term) if text_scores is not None else None,
                # photos indexed before the probabilities were kept: from their stored top classes
                () if probs.complete else self.store.stored_class_mass(term.concepts),
                prominent,
            )
        # Every term scores the photos with probabilities first, in the same order; the few photos with
        # evidence but no probabilities (mid-update, older indexes) follow.
        base = len(probs.ids)
        extra_ids = np.unique(np.concatenate([t.ids[base:] for t in scored.values()]))
        ids = np.concatenate([probs.ids, extra_ids])
        per_term = {}
        for name, t in scored.items():
            column = np.zeros(len(ids))
            column[:base] = t.scores[:base]
            column[base + np.searchsorted(extra_ids, t.ids[base:])] = t.scores[base:]
            per_term[name] = column
        min_score = filters.min_score if filters.min_score is not None else calibration.min_score
        ranking = combine(
            [np.stack([per_term[t.text] for t in group]) for group in query.groups],
            [main_concept(group) for group in query.groups],
            min_score,
            calibration.context_floor,
            filters.match_all,
        )
        total, tier = ranking.score, ranking.tier
        keep = (tier > 0) & (total > 0)  # a photo with no evidence at all is never listed

        def row_of(photo_id: int) -> int:
            """The photo's place in `ids` (for a photo no concept scored: where it would go)."""
            row = probs.row.get(photo_id)
            return row if row is not None else base + int(np.searchsorted(extra_ids, photo_id))

        if query.close_up:  # within each tier, the photos the main concept fills most first
            fill = self._fill(query, boxes, ids, row_of)
            order = np.lexsort((ids[keep], -total[keep], -fill[keep], -tier[keep]))
        else:
            order = np.lexsort((ids[keep], -total[keep], -tier[keep]))
        candidates = list(zip(ids[keep][order].tolist(), total[keep][order].tolist(), strict=True))
        allowed = self.allowed_ids(filters)
        hits: list[tuple[int, float]] = []
        matching = 0  # photos listed before the filters that exist now
        for chunk in chunks(candidates, 500):
            alive = self.store.alive([i for i, _ in chunk])
            for photo_id, score in chunk:
                if photo_id not in alive:
                    continue
                matching += 1
                if (allowed is None or photo_id in allowed) and len(hits) < n:
                    hits.append((photo_id, score))
            if len(hits) >= n and allowed is None:
                break

        evidence, weak = {}, {}
        for photo_id, _ in hits:
            group = query.groups[int(ranking.group[row_of(photo_id)])]
            evidence[photo_id] = [e for t in group for e in fusion.evidence(scored[t.text], photo_id)]
            weak[photo_id] = [t.text for t in group if per_term[t.text][row_of(photo_id)] < min_score]
        results = self.results(hits, query.text, "concepts: " + query.describe(), evidence, weak)
        results.notes = self._notes(query)
        partial = sum(1 for r in results if r.weak)
        if partial:
            shown = "1 photo shows" if partial == 1 else f"{partial} photos show"
            results.notes.append(
                f"{shown} only part of the query (its `weak` concepts score under {min_score:g}): listed "
                "after the photos that show all of it; --all lists only those"
            )
        if not results:
            results.message = self._nothing_found(query, matching, filters, min_score, ranking.gate)
        return results

    @staticmethod
    def _fill(
        query: Query, boxes: dict[str, list[DetectionHit]], ids: np.ndarray, row_of: Callable[[int], int]
    ) -> np.ndarray:
        """Per photo (in `ids` order), the largest share of it that a sure object of a main concept
        fills: its mask's share from an instance segmenter, else its box's; 0 where none was found."""
        fill = np.zeros(len(ids))
        mains = {group[main_concept(group)].text for group in query.groups}
        for text in mains:
            for hit in boxes[text]:
                row = row_of(hit.photo_id)
                if hit.score < PROMINENT_SCORE or row >= len(ids) or ids[row] != hit.photo_id:
                    continue  # not sure enough, or evidence for a photo no concept scored
                fill[row] = max(fill[row], hit.fill)
        return fill

    def _notes(self, query: Query) -> list[str]:
        notes = [f"showing results for {fixed!r} (you typed {typed!r})" for typed, fixed in query.corrected]
        if query.close_up:
            notes.append(
                "close-up: the photos the main concept fills most come first (objects' own areas where an "
                "instance segmenter indexed them, `pixelsift index --segmenter`; else their boxes')"
            )
        if query.unknown:
            notes.append(
                f"ignored {', '.join(repr(w) for w in query.unknown)}: not a thing photos are indexed by; "
                f"searched for {query.describe()}"
            )
        related = [t.describe() for t in query.terms if t.how == RELATED]
        if related:
            notes.append("no class is named so; searched through WordNet's neighbours: " + "; ".join(related))
        detectable = [t.text for t in query.terms if t.detection_names]
        undetected = self._count_undetected() if detectable else 0
        if undetected:
            photos = "1 photo has" if undetected == 1 else f"{undetected} photos have"
            notes.append(
                f"{photos} not been seen by an object detector, so {', '.join(map(repr, detectable))} rests "
                "on the classifier alone there (see `pixelsift index --stats` and `pixelsift doctor`)"
            )
        return notes

    def _prominent(self, min_area: float) -> list[DetectionHit]:
        """The big, sure boxes of the library (`Fusion.explained_away`), read again only after the index
        changed."""
        seq = self.store.seq()
        if self._boxes is None or self._boxes[:2] != (seq, min_area):
            self._boxes = (seq, min_area, self.store.prominent_detections(PROMINENT_SCORE, min_area))
        return self._boxes[2]

    def _count_undetected(self) -> int:
        """Photos no detector has looked at, counted again only after the index changed."""
        seq = self.store.seq()
        if self._undetected is None or self._undetected[0] != seq:
            self._undetected = (seq, self.store.count_without_detection())
        return self._undetected[1]

    def _nothing_found(
        self, query: Query, matching: int, filters: Filters, min_score: float, gate: np.ndarray
    ) -> str:
        what = query.describe()
        if matching:
            photos = "1 photo matches" if matching == 1 else f"{matching} photos match"
            return f"{photos} {what!r}, none {filters.describe()}"
        best = float(gate.max()) if len(gate) else 0.0
        message = f"no photo matches {what!r} with a score of at least {min_score:g}"
        if not filters.match_all and any(len(group) > 1 for group in query.groups):
            mains = " or ".join(repr(group[main_concept(group)].text) for group in query.groups)
            message = (
                f"no photo matches {mains} (the main concept of {what!r}) with a score of at least "
                f"{min_score:g}"
            )
        if best > 0.005:
            lower = f"{max(0.01, best - 0.005):.2f}"
            message += (
                f" (the best scores {best:.2f}; a minimum score of {lower} lists it: --min-score {lower})"
            )
        return message

    def allowed_ids(self, filters: Filters) -> set[int] | None:
        """Photo ids that pass the filters, or None when there are no filters."""
        return self.store.filtered_ids(filters) if filters.active else None

    # ------------------------------------------------------------------------------- text in photos
    def _library_words(self) -> set[str]:
        """Every word read in the library's photos (what a misspelt `--text` query is compared with),
        read again only after the index changed."""
        seq = self.store.seq()
        if self._text_words is None or self._text_words[0] != seq:
            self._text_words = (seq, {w for norm in self.store.text_norms() for w in textmatch.words(norm)})
        return self._text_words[1]

    def has_text(self) -> bool:
        """Whether any photo of the library has text read in it."""
        return self.store.has_text()

    def text_matches(
        self, query_words: list[str], fuzzy: bool = True, parts: bool = True
    ) -> dict[int, TextMatch]:
        """photo id -> how its text matches the query's words (`library.textmatch`)."""
        if not query_words or not self.has_text():
            return {}
        vocabulary = self._library_words() if fuzzy else ()  # read only for misspellings
        wanted = textmatch.fragments(query_words, vocabulary, fuzzy)
        return textmatch.match_photos(query_words, self.store.text_lines_containing(wanted), fuzzy, parts)

    def search_text(self, text: str, n: int, filters: Filters) -> SearchResults:
        """The photos whose text shows `text`: whole words, parts of words, phrases, any case and
        accents, misspellings of an edit or two; ranked by how well and how prominently it matches."""
        query_words = textmatch.words(textmatch.normalize(text))
        if not query_words:
            raise UsageError(f"--text {text!r} has no letters or digits to look for")
        how = "text in photos"
        if not self.has_text():
            return SearchResults([], text, how, self._no_text_read())
        matches = self.text_matches(query_words)
        if filters.min_score is not None:
            matches = {i: m for i, m in matches.items() if m.score >= filters.min_score}
        ranked = sorted(matches.values(), key=lambda m: (-m.score, m.photo_id))
        hits = self._alive_and_allowed([(m.photo_id, m.score) for m in ranked], n, filters)
        evidence = {i: [self._text_evidence(text, matches[i])] for i, _ in hits}
        results = self.results(hits, text, how, evidence)
        if not results:
            where = f" {filters.describe()}" if ranked else ""
            results.message = f"no photo shows the text {text!r}{where}"
        return results

    def _no_text_read(self) -> str:
        return (
            "no photo of this library has had its text read; index with --ocr to read it "
            "(`pixelsift index FOLDER --ocr`, remembered for later updates)"
        )

    @staticmethod
    def _text_evidence(concept: str, match: TextMatch) -> Evidence:
        return Evidence(concept, TEXT, match.line.text, match.score, match.line.score)

    def with_text(self, results: SearchResults, query: str, n: int, filters: Filters) -> SearchResults:
        """A plain query's results with the photos whose text shows the query's words (whole words,
        as a phrase or not) fused in: one noisy OR of the two scores, the text weighted by
        `TEXT_IN_QUERY`, so a sign that says "cat" ranks below a photo of a cat."""
        query_words = textmatch.content_words(query)
        matches = self.text_matches(query_words, fuzzy=False, parts=False) if query_words else {}
        if not matches:
            return results
        scores = {r.id: r.score for r in results}
        for photo_id, match in matches.items():
            text_score = TEXT_IN_QUERY * match.score
            scores[photo_id] = 1.0 - (1.0 - scores.get(photo_id, 0.0)) * (1.0 - text_score)
        if filters.min_score is not None:
            scores = {i: v for i, v in scores.items() if v >= filters.min_score}
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        hits = self._alive_and_allowed(ranked, n, filters)
        before = {r.id: r for r in results}
        evidence = {i: list(before[i].matched) if i in before else [] for i, _ in hits}
        for photo_id, _ in hits:
            if photo_id in matches:
                evidence[photo_id].insert(0, self._text_evidence(query, matches[photo_id]))
        weak = {i: before[i].weak for i, _ in hits if i in before}
        how = results.how + " + text in photos" if results else "text in photos"
        fused = self.results(hits, query, how, evidence, weak)
        fused.notes = results.notes
        return fused

    def _alive_and_allowed(
        self, ranked: list[tuple[int, float]], n: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """The first `n` of `ranked` (photo id, score) whose photo is still indexed and passes the filters."""
        allowed = self.allowed_ids(filters)
        hits: list[tuple[int, float]] = []
        for chunk in chunks(ranked, 500):
            alive = self.store.alive([i for i, _ in chunk])
            hits += [(i, v) for i, v in chunk if i in alive and (allowed is None or i in allowed)]
            if len(hits) >= n:
                break
        return hits[:n]

    # ------------------------------------------------------------------------------------- results
    def results(
        self,
        hits: list[tuple[int, float]],
        query: str,
        how: str,
        evidence: dict[int, list[Evidence]] | None = None,
        weak: dict[int, list[str]] | None = None,
    ) -> SearchResults:
        if not hits:
            return SearchResults([], query, how)
        ids = [i for i, _ in hits]
        photos = self.store.summaries(ids)
        labels = self.store.labels_for_display(ids)
        out = []
        for photo_id, score in hits:
            photo = photos.get(photo_id)
            if photo is None:  # deleted between the two queries (an indexer is running)
                continue
            out.append(
                SearchResult(
                    photo_id,
                    str(self.root / photo.path),
                    photo.path,
                    score,
                    labels.get(photo_id, []),
                    photo.taken_at,
                    photo.camera,
                    (evidence or {}).get(photo_id, []),
                    weak=(weak or {}).get(photo_id, []),
                )
            )
        return SearchResults(out, query, how)
