"""Searching a photo index: by word, by example photo, by free text; results as a list or a DataFrame.

A word query ("cat", "dogs", "stop sign", "kitten") is resolved through WordNet (see `vocabulary`) to the
ImageNet classes and COCO detection classes it covers, and matched against the user's own labels by
name. A photo's score is the probability mass its classifier put on the covered classes (a tabby photo
with tabby 0.6 + tiger cat 0.3 scores 0.9 for "cat"), or the confidence of a matching detection or
custom label, whichever is highest. Several words ("cat dog", "person, bicycle") must all match; the
score is the weakest of them. A query that is not a known word goes to the text-image model when the
library has one ("a dog playing in snow"); otherwise the answer says so and suggests known labels.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelsift.library.rows import Filters, Term
from pixelsift.library.store import LibraryStore
from pixelsift.models.vocabulary import Vocabulary, base_forms, normalise

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Filters", "SearchResult", "SearchResults", "Searcher", "Term"]

STOP_WORDS = frozenset({"a", "an", "the", "of", "in", "on", "with", "and", "or", "at", "by", "my", "some"})


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "score": self.score,
            "labels": self.labels,
            "id": self.id,
            "relative_path": self.relative_path,
            "taken_at": self.taken_at,
            "camera": self.camera,
        }


class SearchResults(list[SearchResult]):
    """Results, best first. `how` says how the query was understood; `message` is set when nothing
    matched (with suggestions)."""

    def __init__(self, results: list[SearchResult] = (), query: str = "", how: str = "", message: str = ""):  # type: ignore[assignment]
        super().__init__(results)
        self.query, self.how, self.message = query, how, message

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]

    def to_pandas(self) -> pd.DataFrame:
        """One row per photo: path, score, labels (joined by ", "), id, relative_path, taken_at, camera."""
        import pandas as pd

        rows = [{**r.to_dict(), "labels": ", ".join(r.labels)} for r in self]
        columns = ["path", "score", "labels", "id", "relative_path", "taken_at", "camera"]
        return pd.DataFrame(rows, columns=columns)


class Searcher:
    """Understands queries and runs them against an open index."""

    def __init__(self, store: LibraryStore, root: Path):
        self.store = store
        self.root = root
        self.vocab = Vocabulary.load()

    # ------------------------------------------------------------------------------ understanding
    def understand(self, query: str) -> tuple[list[Term], list[str]]:
        """The query as terms (all must match) and the words that were not understood."""
        whole = self._term(query)
        if whole is not None:
            return [whole], []
        words = [w for w in re.split(r"[,+&]|\s+", normalise(query)) if w and w not in STOP_WORDS]
        terms, unknown = [], []
        for word in words:
            term = self._term(word)
            if term is None:
                unknown.append(word)
            else:
                terms.append(term)
        return terms, unknown

    def _term(self, text: str) -> Term | None:
        text = normalise(text)
        if not text:
            return None
        forms = list(dict.fromkeys([self.vocab.irregular.get(text, text), *base_forms(text)]))
        # Custom class names are folder names: "blue_triangle" is found as "blue triangle(s)" too.
        spellings = dict.fromkeys(c for f in forms for c in (f, f.replace(" ", "_")))
        labels = {c for c in spellings if self.store.has_label(c)}
        detections = {f: 1.0 for f in forms if self.store.has_detection(f)}
        meaning = self.vocab.lookup(text)
        concepts: dict[str, float] = {}
        if meaning is not None:
            concepts = self.vocab.concept_weights(meaning)
            for name, weight in self.vocab.coco_weights(meaning).items():
                detections[name] = max(detections.get(name, 0.0), weight)
        if not (labels or detections or concepts):
            return None
        return Term(text, concepts, detections, labels)

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

    # ---------------------------------------------------------------------------------- word search
    def word_search(self, terms: list[Term], n: int, filters: Filters) -> list[tuple[int, float]]:
        return self.store.word_search(terms, n, filters)

    def allowed_ids(self, filters: Filters) -> set[int] | None:
        """Photo ids that pass the filters, or None when there are no filters."""
        return self.store.filtered_ids(filters) if filters.active else None

    # ------------------------------------------------------------------------------------- results
    def results(self, hits: list[tuple[int, float]], query: str, how: str) -> SearchResults:
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
                )
            )
        return SearchResults(out, query, how)
