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
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelsift.errors import UsageError
from pixelsift.library.vocabulary import Vocabulary, base_forms, normalise

if TYPE_CHECKING:
    import pandas as pd

STOP_WORDS = frozenset({"a", "an", "the", "of", "in", "on", "with", "and", "or", "at", "by", "my", "some"})
PHOTO_DATE = (
    "COALESCE(p.taken_at, strftime('%Y-%m-%dT%H:%M:%S', p.mtime_ns / 1000000000.0, 'unixepoch', 'localtime'))"
)


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


@dataclass
class Filters:
    after: str | None = None  # ISO date-time, inclusive
    before: str | None = None  # exclusive
    camera: str | None = None
    min_score: float | None = None

    @classmethod
    def parse(
        cls,
        after: str | None = None,
        before: str | None = None,
        camera: str | None = None,
        min_score: float | None = None,
    ) -> Filters:
        if min_score is not None and not 0 <= min_score <= 1:
            raise UsageError(f"--min-score must be between 0 and 1, not {min_score}")
        return cls(parse_date(after, "after"), parse_date(before, "before"), camera or None, min_score)

    def sql(self) -> tuple[str, list[Any]]:
        """(conditions on `photos p`, parameters)."""
        conditions, params = ["p.status = 'ok'"], []
        if self.after:
            conditions.append(f"{PHOTO_DATE} >= ?")
            params.append(self.after)
        if self.before:
            conditions.append(f"{PHOTO_DATE} < ?")
            params.append(self.before)
        if self.camera:
            conditions.append("p.camera LIKE ? ESCAPE '\\'")
            escaped = self.camera.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        return " AND ".join(conditions), params

    @property
    def active(self) -> bool:
        return bool(self.after or self.before or self.camera)


def parse_date(text: str | None, option: str) -> str | None:
    """ "2021", "2021-07", "2021-07-04" or a full ISO date-time -> "2021-07-04T00:00:00"."""
    if not text:
        return None
    for fmt in ("%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text.strip(), fmt).isoformat()
        except ValueError:
            continue
    raise UsageError(f"--{option} {text!r}: use a date like 2021, 2021-07 or 2021-07-04")


@dataclass
class Term:
    """One understood word of a query and everything it matches."""

    text: str
    concepts: dict[str, float]  # ImageNet/COCO synset -> weight
    detection_names: dict[str, float]  # lower-case detector class name -> weight
    label_names: set[str]  # lower-case custom (and non-ImageNet classifier) label names


class Searcher:
    """Runs queries against an open index connection."""

    def __init__(self, conn: sqlite3.Connection, root: Path):
        self.conn = conn
        self.root = root
        self.vocab = Vocabulary.load()

    # ------------------------------------------------------------------------------ understanding
    def _has_label(self, name: str) -> bool:
        """Whether some photo has a custom label (or a non-ImageNet class) called `name` (index lookup)."""
        return bool(
            self.conn.execute(
                "SELECT 1 FROM labels "
                "WHERE label = ? COLLATE NOCASE AND (kind = 'custom' OR concept IS NULL) LIMIT 1",
                (name,),
            ).fetchone()
        )

    def _has_detection(self, name: str) -> bool:
        return bool(
            self.conn.execute(
                "SELECT 1 FROM detections WHERE label = ? COLLATE NOCASE LIMIT 1", (name,)
            ).fetchone()
        )

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
        labels = {c for c in spellings if self._has_label(c)}
        detections = {f: 1.0 for f in forms if self._has_detection(f)}
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
        in_library = sorted(
            {r[0] for r in self.conn.execute("SELECT DISTINCT label FROM labels")}
            | {r[0] for r in self.conn.execute("SELECT DISTINCT label FROM detections")}
        )
        lowered = {label.lower(): label for label in in_library}
        found: list[str] = []
        for word in words:
            found += [lowered[m] for m in difflib.get_close_matches(word, list(lowered), n=limit, cutoff=0.6)]
            if len(found) < limit:
                cutoff = 0.6 if len(word) <= 4 else 0.75  # one typo in a short word is a big share of it
                found += difflib.get_close_matches(word, list(self.vocab.words), n=limit, cutoff=cutoff)
        return list(dict.fromkeys(found))[:limit]

    # ---------------------------------------------------------------------------------- word search
    def term_sql(self, term: Term, alias: str) -> tuple[str, list[Any]]:
        """SQL for (id, score) of every photo the term matches, and its parameters."""
        parts, params = [], []
        if term.concepts:
            values = ",".join("(?, ?)" for _ in term.concepts)
            parts.append(
                f"SELECT l.photo_id AS id, MIN(1.0, SUM(l.score * q.weight)) AS score "
                f"FROM (SELECT column1 AS concept, column2 AS weight FROM (VALUES {values})) q "
                f"JOIN labels l ON l.concept = q.concept AND l.kind = 'class' GROUP BY l.photo_id"
            )
            for concept, weight in term.concepts.items():
                params += [concept, weight]
        if term.detection_names:
            values = ",".join("(?, ?)" for _ in term.detection_names)
            parts.append(
                f"SELECT d.photo_id AS id, MAX(d.score * q.weight) AS score "
                f"FROM (SELECT column1 AS label, column2 AS weight FROM (VALUES {values})) q "
                f"JOIN detections d ON d.label = q.label COLLATE NOCASE GROUP BY d.photo_id"
            )
            for name, weight in term.detection_names.items():
                params += [name, weight]
        if term.label_names:
            marks = ",".join("?" * len(term.label_names))
            parts.append(
                f"SELECT photo_id AS id, MIN(1.0, SUM(score)) AS score FROM labels "
                f"WHERE (kind = 'custom' OR concept IS NULL) AND label COLLATE NOCASE IN ({marks}) "
                f"GROUP BY photo_id, source"
            )
            params += sorted(term.label_names)
        union = " UNION ALL ".join(parts)
        return f"{alias} AS (SELECT id, MAX(score) AS score FROM ({union}) GROUP BY id)", params

    def word_search(self, terms: list[Term], n: int, filters: Filters) -> list[tuple[int, float]]:
        ctes, params = [], []
        for i, term in enumerate(terms):
            sql, term_params = self.term_sql(term, f"t{i}")
            ctes.append(sql)
            params += term_params
        score = (
            "t0.score"
            if len(terms) == 1
            else "MIN(" + ", ".join(f"t{i}.score" for i in range(len(terms))) + ")"
        )
        joins = " ".join(f"JOIN t{i} ON t{i}.id = t0.id" for i in range(1, len(terms)))
        where, filter_params = filters.sql()
        min_score = f" AND {score} >= ?" if filters.min_score is not None else ""
        sql = (
            f"WITH {', '.join(ctes)} SELECT t0.id, {score} AS s FROM t0 {joins} "
            f"JOIN photos p ON p.id = t0.id WHERE {where}{min_score} ORDER BY s DESC, t0.id LIMIT ?"
        )
        params += filter_params
        if filters.min_score is not None:
            params.append(filters.min_score)
        return [(int(i), float(s)) for i, s in self.conn.execute(sql, (*params, n))]

    def allowed_ids(self, filters: Filters) -> set[int] | None:
        """Photo ids that pass the filters, or None when there are no filters."""
        if not filters.active:
            return None
        where, params = filters.sql()
        return {int(r[0]) for r in self.conn.execute(f"SELECT p.id FROM photos p WHERE {where}", params)}

    # ------------------------------------------------------------------------------------- results
    def results(self, hits: list[tuple[int, float]], query: str, how: str) -> SearchResults:
        if not hits:
            return SearchResults([], query, how)
        ids = [i for i, _ in hits]
        marks = ",".join("?" * len(ids))
        photos = {
            r[0]: r[1:]
            for r in self.conn.execute(
                f"SELECT id, path, taken_at, camera FROM photos WHERE id IN ({marks})", tuple(ids)
            )
        }
        labels = self.photo_labels(ids)
        out = []
        for photo_id, score in hits:
            if photo_id not in photos:  # deleted between the two queries (an indexer is running)
                continue
            rel, taken_at, camera = photos[photo_id]
            out.append(
                SearchResult(
                    photo_id, str(self.root / rel), rel, score, labels.get(photo_id, []), taken_at, camera
                )
            )
        return SearchResults(out, query, how)

    def photo_labels(self, ids: list[int], classes: int = 3) -> dict[int, list[str]]:
        """Per photo: its top classifier classes, the objects detected, its custom labels."""
        marks = ",".join("?" * len(ids))
        found: dict[int, list[str]] = {i: [] for i in ids}
        rows = self.conn.execute(
            f"SELECT photo_id, label, kind FROM labels WHERE photo_id IN ({marks}) "
            "ORDER BY photo_id, kind, score DESC",
            tuple(ids),
        )
        taken: dict[tuple[int, str], int] = {}
        for photo_id, label, kind in rows:
            count = taken.get((photo_id, kind), 0)
            if count >= (classes if kind == "class" else 1):
                continue
            taken[(photo_id, kind)] = count + 1
            found[photo_id].append(label)
        for photo_id, label in self.conn.execute(
            f"SELECT photo_id, label FROM detections WHERE photo_id IN ({marks}) GROUP BY photo_id, label "
            f"ORDER BY photo_id, MAX(score) DESC",
            tuple(ids),
        ):
            if label not in found[photo_id]:
                found[photo_id].append(label)
        return found
