"""`LibraryStore`: every SQL statement on a photo index, with typed rows (`library.rows`) in and out.

The indexer, the searcher, the vector caches and `PhotoIndex` call methods here; none of them writes
SQL. The schema and its migrations are in `library.schema`. Writes run inside `store.transaction()`
(one per batch, so a killed process leaves the last committed batch); reads outside one see the
latest commit. Vectors are float32 BLOBs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.sequences import chunks
from pixelsift.core.sqlite import connect as sqlite_connect
from pixelsift.core.sqlite import transaction
from pixelsift.errors import LibraryFileError
from pixelsift.imaging import scene
from pixelsift.library.rows import (
    FAILED,
    OK,
    PROBS,
    Detection,
    DetectionHit,
    Filters,
    LabelHit,
    LabelRow,
    LibrarySettings,
    PhotoDetails,
    PhotoRecord,
    PhotoRow,
    PhotoSummary,
    StoredPhoto,
    TextHit,
    TextRow,
)
from pixelsift.library.schema import connect

# A photo's date for the date filters: EXIF DateTimeOriginal, else the file's mtime (local time).
PHOTO_DATE = (
    "COALESCE(p.taken_at, strftime('%Y-%m-%dT%H:%M:%S', p.mtime_ns / 1000000000.0, 'unixepoch', 'localtime'))"
)
# A label searched by its name: a labeler's, or a class of a classifier whose classes are not ImageNet's.
_CUSTOM = "(kind = 'custom' OR concept IS NULL)"
# a detection's box as a share of its photo (`detections d JOIN photos p`); NULL when the size is unknown
_BOX_AREA = "(d.x2 - d.x1) * (d.y2 - d.y1) / NULLIF(1.0 * p.width * p.height, 0)"
SCENE_KIND = "scene"  # a scene region's kind in `photo()`'s labels (stored as a 'custom' label)
_IN_CHUNK = 500  # ids per `IN (...)` list, well below SQLite's parameter limit
_PHOTO_COLUMNS = ", ".join(PhotoRow.__dataclass_fields__)
_TEXT_COLUMNS = "line, text, norm, score, x1, y1, x2, y2, size, words"


def _is_scene(kind: str, source: str) -> bool:
    """Whether a labels row is a scene region's (`imaging.scene`: stored as a custom label)."""
    return kind == "custom" and source == scene.SOURCE


def vector_to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def blob_to_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class LibraryStore:
    """One open photo index file."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    @classmethod
    def open(cls, path: str | Path, create: bool = True, readonly: bool | None = False) -> LibraryStore:
        """Open (and create or migrate) the index at `path` (see `library.schema.connect`)."""
        return cls(connect(path, create=create, readonly=readonly))

    @property
    def readonly(self) -> bool:
        """Whether this index was opened read-only (a read-only file or folder)."""
        return bool(self.conn.execute("PRAGMA query_only").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception)."""
        return transaction(self.conn)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every read inside sees the same commit, even while an indexer writes."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # ------------------------------------------------------------------------------------- settings
    @staticmethod
    def salvage_settings(path: Path, keys: Sequence[str]) -> LibrarySettings:
        """The settings `keys` (LibrarySettings fields) that can still be read from a damaged index file
        (opened read-only, never changed); a damaged value is left out."""
        found: dict[str, str] = {}
        try:
            # read as every index is read: a folder name that is not UTF-8 comes back as the OS gave it
            conn = sqlite_connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error:
            return LibrarySettings()
        try:
            for key in keys:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                    if row and isinstance(row[0], str):
                        LibrarySettings.from_meta({key: row[0]})  # parses: kept
                        found[key] = row[0]
        finally:
            conn.close()
        return LibrarySettings.from_meta(found)

    def settings(self) -> LibrarySettings:
        """What this index remembers between runs (`LibrarySettings`); a damaged value is a
        `LibraryFileError` that says how to repair the index."""
        meta = {str(k): str(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}
        try:
            return LibrarySettings.from_meta(meta)
        except ValueError as exc:
            raise LibraryFileError(f"{exc}; rebuild it with `pixelsift index --repair --db FILE`") from None

    def save_settings(self, **changes: Any) -> LibrarySettings:
        """Change some settings (LibrarySettings fields) and keep the rest; returns them all."""
        updated = dataclasses.replace(self.settings(), **changes)
        for key, value in updated.to_meta().items():
            self._set_meta(key, value)
        return updated

    def _get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def seq(self) -> int:
        """The latest write sequence number: every vector written carries the one of its batch."""
        return int(self._get_meta("seq", "0") or 0)

    def next_seq(self) -> int:
        """A new write sequence number (call inside a transaction): vectors written now carry it."""
        seq = self.seq() + 1
        self._set_meta("seq", str(seq))
        return seq

    # ----------------------------------------------------------------------- photos: change detection
    def photo_states(self) -> dict[str, StoredPhoto]:
        """relative path -> what change detection needs, for every indexed photo (failed ones too)."""
        cursor = self.conn.execute("SELECT path, id, size, mtime_ns, sha256, status FROM photos")
        return {
            path: StoredPhoto(int(i), int(size), int(mtime), sha, status)
            for path, i, size, mtime, sha, status in cursor
        }

    def move_photo(self, photo_id: int, path: str, size: int, mtime_ns: int) -> None:
        self.conn.execute(
            "UPDATE photos SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
            (path, size, mtime_ns, photo_id),
        )

    def touch_photo(self, photo_id: int, size: int, mtime_ns: int) -> None:
        """The file's stat changed but not its content."""
        self.conn.execute("UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, photo_id))

    def copy_photo(self, source_id: int, path: str, size: int, mtime_ns: int, seq: int) -> int:
        """A new entry for a copy of an indexed photo, with all of its results; returns its id."""
        columns = "sha256, status, error, width, height, taken_at, camera, latitude, longitude, detector, "
        columns += "indexed_at"
        new_id = int(
            self.conn.execute(
                f"INSERT INTO photos (path, size, mtime_ns, {columns}) "
                f"SELECT ?, ?, ?, {columns} FROM photos WHERE id = ? RETURNING id",
                (path, size, mtime_ns, source_id),
            ).fetchone()[0]
        )
        self.conn.execute(
            "INSERT INTO labels (photo_id, kind, source, label, concept, score) "
            "SELECT ?, kind, source, label, concept, score FROM labels WHERE photo_id = ?",
            (new_id, source_id),
        )
        self.conn.execute(
            "INSERT INTO detections (photo_id, detector, label, score, x1, y1, x2, y2, area) "
            "SELECT ?, detector, label, score, x1, y1, x2, y2, area FROM detections WHERE photo_id = ?",
            (new_id, source_id),
        )
        self.conn.execute(
            "INSERT INTO embeddings (photo_id, space, seq, vector) "
            "SELECT ?, space, ?, vector FROM embeddings WHERE photo_id = ?",
            (new_id, seq, source_id),
        )
        self.conn.execute(
            "INSERT INTO unrecognised (photo_id, source, distance) "
            "SELECT ?, source, distance FROM unrecognised WHERE photo_id = ?",
            (new_id, source_id),
        )
        self.conn.execute(
            f"INSERT INTO text_lines (photo_id, {_TEXT_COLUMNS}) "
            f"SELECT ?, {_TEXT_COLUMNS} FROM text_lines WHERE photo_id = ?",
            (new_id, source_id),
        )
        self.conn.execute(
            "UPDATE photos SET text_reader = (SELECT text_reader FROM photos WHERE id = ?) WHERE id = ?",
            (source_id, new_id),
        )
        return new_id

    def delete_photos(self, ids: Sequence[int]) -> None:
        """Drop these entries and (by cascade) their labels, detections and vectors."""
        for chunk in chunks(list(ids), _IN_CHUNK):
            self.conn.execute(f"DELETE FROM photos WHERE id IN ({_marks(chunk)})", tuple(chunk))

    # ------------------------------------------------------------------------------ photos: results
    def upsert_photo(self, record: PhotoRecord) -> int:
        """Insert or replace the entry for `record.path`, keeping its id; its old results are removed."""
        meta = record.metadata
        photo_id = self.conn.execute(
            """
            INSERT INTO photos (path, size, mtime_ns, sha256, status, error, width, height, taken_at, camera,
                                latitude, longitude, detector, indexed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (path) DO UPDATE SET
                size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256,
                status = excluded.status, error = excluded.error, width = excluded.width,
                height = excluded.height, taken_at = excluded.taken_at, camera = excluded.camera,
                latitude = excluded.latitude, longitude = excluded.longitude, detector = excluded.detector,
                indexed_at = excluded.indexed_at, text_reader = NULL
            RETURNING id
            """,
            (
                record.path,
                record.size,
                record.mtime_ns,
                record.sha256,
                record.status,
                record.error,
                meta.width,
                meta.height,
                meta.taken_at,
                meta.camera,
                meta.latitude,
                meta.longitude,
                record.detector,
                record.indexed_at,
            ),
        ).fetchone()[0]
        for table in ("labels", "detections", "embeddings", "unrecognised", "text_lines"):
            self.conn.execute(f"DELETE FROM {table} WHERE photo_id = ?", (photo_id,))
        return int(photo_id)

    def set_class_labels(
        self, photo_id: int, source: str, labels: Iterable[tuple[str, str | None, float]]
    ) -> None:
        """The classifier's top classes of a photo: (label, WordNet concept or None, probability), in
        place of any it had."""
        self.conn.execute("DELETE FROM labels WHERE photo_id = ? AND kind = 'class'", (photo_id,))
        self.conn.executemany(
            "INSERT INTO labels (photo_id, kind, source, label, concept, score) "
            "VALUES (?, 'class', ?, ?, ?, ?)",
            [(photo_id, source, label, concept, score) for label, concept, score in labels],
        )

    def set_custom_labels(
        self,
        photo_id: int,
        source: str,
        predictions: Iterable[tuple[str, float]],
        unrecognised: float | None = None,
    ) -> None:
        """A labeler's (label, score) predictions for a photo, replacing its earlier ones; or, with
        `unrecognised` (the photo's distance to the labeler's training photos), none: it did not
        recognise the photo."""
        self.conn.execute(
            "DELETE FROM labels WHERE photo_id = ? AND kind = 'custom' AND source = ?", (photo_id, source)
        )
        self.conn.execute("DELETE FROM unrecognised WHERE photo_id = ? AND source = ?", (photo_id, source))
        if unrecognised is not None:
            self.conn.execute(
                "INSERT INTO unrecognised (photo_id, source, distance) VALUES (?, ?, ?)",
                (photo_id, source, float(unrecognised)),
            )
            return
        self.conn.executemany(
            "INSERT INTO labels (photo_id, kind, source, label, concept, score) "
            "VALUES (?, 'custom', ?, ?, NULL, ?)",
            [(photo_id, source, label, score) for label, score in predictions],
        )

    def delete_custom_labels(self, source: str) -> None:
        """Forget every label of one labeler (it was retrained: its old labels are stale)."""
        self.conn.execute("DELETE FROM labels WHERE kind = 'custom' AND source = ?", (source,))
        self.conn.execute("DELETE FROM unrecognised WHERE source = ?", (source,))

    def unrecognised_count(self, source: str) -> int:
        """Photos the labeler `source` looked at and did not recognise."""
        row = self.conn.execute("SELECT COUNT(*) FROM unrecognised WHERE source = ?", (source,)).fetchone()
        return int(row[0])

    def set_detections(self, photo_id: int, detector: str, found: Iterable[Detection]) -> None:
        """What `detector` found in a photo, replacing earlier detections; the photo is marked as seen."""
        self.conn.execute("DELETE FROM detections WHERE photo_id = ?", (photo_id,))
        self.conn.executemany(
            "INSERT INTO detections (photo_id, detector, label, score, x1, y1, x2, y2, area) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(photo_id, detector, d.label, d.score, *d.box, d.area) for d in found],
        )
        self.conn.execute("UPDATE photos SET detector = ? WHERE id = ?", (detector, photo_id))

    def set_text(self, photo_id: int, reader: str, lines: Sequence[TextRow]) -> None:
        """The lines of text `reader` read in a photo, replacing earlier ones; the photo is marked as read
        (also when it has no text)."""
        self.conn.execute("DELETE FROM text_lines WHERE photo_id = ?", (photo_id,))
        self.conn.executemany(
            f"INSERT INTO text_lines (photo_id, {_TEXT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (photo_id, i, r.text, r.norm, r.score, *r.box, r.size, json.dumps([list(w) for w in r.words]))
                for i, r in enumerate(lines)
            ],
        )
        self.conn.execute("UPDATE photos SET text_reader = ? WHERE id = ?", (reader, photo_id))

    def put_vector(self, photo_id: int, space: str, seq: int, vector: np.ndarray) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO embeddings (photo_id, space, seq, vector) VALUES (?, ?, ?, ?)",
            (photo_id, space, seq, vector_to_blob(vector)),
        )

    def delete_space(self, space: str) -> None:
        """Forget every vector of one space (a new text-image model: the old vectors mean nothing to it)."""
        self.conn.execute("DELETE FROM embeddings WHERE space = ?", (space,))

    # -------------------------------------------------------------------------- photos: what is missing
    def _ok_photos_where(self, condition: str, params: tuple[Any, ...]) -> list[tuple[int, str]]:
        sql = f"SELECT p.id, p.path FROM photos p WHERE p.status = '{OK}' AND {condition} ORDER BY p.id"
        return [(int(i), str(p)) for i, p in self.conn.execute(sql, params)]

    def photos_without_labels_of(self, source: str) -> list[tuple[int, str]]:
        """(id, relative path) of the readable photos that a labeler has not labelled yet."""
        return self._ok_photos_where(
            "NOT EXISTS (SELECT 1 FROM labels l "
            "WHERE l.photo_id = p.id AND l.kind = 'custom' AND l.source = ?) "
            "AND NOT EXISTS (SELECT 1 FROM unrecognised u WHERE u.photo_id = p.id AND u.source = ?)",
            (source, source),
        )

    def photos_not_seen_by(self, detector: str) -> list[tuple[int, str]]:
        """(id, relative path) of the readable photos that `detector` has not looked at."""
        return self._ok_photos_where("p.detector IS NOT ?", (detector,))

    def photos_not_read_by(self, reader: str) -> list[tuple[int, str]]:
        """(id, relative path) of the readable photos whose text `reader` has not read."""
        return self._ok_photos_where("p.text_reader IS NOT ?", (reader,))

    def count_without_detection(self) -> int:
        """Readable photos that no object detector has looked at."""
        row = self.conn.execute(
            f"SELECT COUNT(*) FROM photos WHERE status = '{OK}' AND detector IS NULL"
        ).fetchone()
        return int(row[0])

    def photos_without_vector(self, space: str) -> list[tuple[int, str]]:
        return self._ok_photos_where(
            "NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.photo_id = p.id AND e.space = ?)", (space,)
        )

    # ------------------------------------------------------------------------------------- vectors
    def has_vectors(self, space: str) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM embeddings WHERE space = ? LIMIT 1", (space,)).fetchone()
            is not None
        )

    def vectors_of(self, space: str, ids: Sequence[int]) -> list[tuple[int, np.ndarray]]:
        """(photo id, vector) of those of `ids` that have one in `space`."""
        found: list[tuple[int, np.ndarray]] = []
        for chunk in chunks(list(ids), _IN_CHUNK):
            found += [
                (int(i), blob_to_vector(blob))
                for i, blob in self.conn.execute(
                    "SELECT photo_id, vector FROM embeddings "
                    f"WHERE space = ? AND photo_id IN ({_marks(chunk)})",
                    (space, *chunk),
                )
            ]
        return found

    def vector_by_path(self, space: str, path: str) -> tuple[int, np.ndarray] | None:
        """(id, vector) of the photo at this relative path."""
        row = self.conn.execute(
            "SELECT p.id, e.vector FROM photos p JOIN embeddings e ON e.photo_id = p.id AND e.space = ? "
            "WHERE p.path = ?",
            (space, path),
        ).fetchone()
        return (int(row[0]), blob_to_vector(row[1])) if row else None

    def vector_by_content(self, space: str, sha256: str) -> tuple[int, np.ndarray] | None:
        """(id, vector) of a readable photo with this content hash."""
        row = self.conn.execute(
            "SELECT p.id, e.vector FROM photos p JOIN embeddings e ON e.photo_id = p.id AND e.space = ? "
            f"WHERE p.sha256 = ? AND p.status = '{OK}' LIMIT 1",
            (space, sha256),
        ).fetchone()
        return (int(row[0]), blob_to_vector(row[1])) if row else None

    def count_vectors(self, space: str) -> int:
        """Vectors of readable photos in `space`."""
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM embeddings e JOIN photos p ON p.id = e.photo_id "
                f"WHERE e.space = ? AND p.status = '{OK}'",
                (space,),
            ).fetchone()[0]
        )

    def count_vectors_since(self, space: str, seq: int) -> int:
        """Vectors written after write sequence number `seq`."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM embeddings WHERE space = ? AND seq > ?", (space, seq)
        ).fetchone()
        return int(row[0])

    def vectors_since(self, space: str, seq: int) -> list[tuple[int, np.ndarray]]:
        """(photo id, vector) of every vector written after `seq`."""
        return [
            (int(i), blob_to_vector(blob))
            for i, blob in self.conn.execute(
                "SELECT photo_id, vector FROM embeddings WHERE space = ? AND seq > ?", (space, seq)
            )
        ]

    def iter_vector_blocks(self, space: str, size: int = 4096) -> Iterator[tuple[list[int], np.ndarray]]:
        """(photo ids, float32 matrix) blocks of every readable photo's vector, by id, in constant
        memory. Run it inside `snapshot()` to read one consistent state."""
        cursor = self.conn.execute(
            "SELECT e.photo_id, e.vector FROM embeddings e JOIN photos p ON p.id = e.photo_id "
            f"WHERE e.space = ? AND p.status = '{OK}' ORDER BY e.photo_id",
            (space,),
        )
        while rows := cursor.fetchmany(size):
            yield [int(i) for i, _ in rows], np.stack([blob_to_vector(blob) for _, blob in rows])

    def alive(self, ids: Sequence[int]) -> set[int]:
        """Which of `ids` are readable indexed photos right now (deleted and failed ones are not)."""
        found: set[int] = set()
        for chunk in chunks(list(ids), _IN_CHUNK):
            found.update(
                int(r[0])
                for r in self.conn.execute(
                    f"SELECT id FROM photos WHERE status = '{OK}' AND id IN ({_marks(chunk)})", tuple(chunk)
                )
            )
        return found

    # ------------------------------------------------------------------------------------ inspecting
    def photo(self, photo_id: int) -> PhotoDetails | None:
        row = self.conn.execute(f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE id = ?", (photo_id,)).fetchone()
        if row is None:
            return None
        labels = [  # the scene regions are stored as labels of the source "scene"; shown as their own kind
            LabelRow(SCENE_KIND if _is_scene(kind, source) else kind, source, label, score)
            for kind, source, label, score in self.conn.execute(
                "SELECT kind, source, label, score FROM labels WHERE photo_id = ? ORDER BY kind, score DESC",
                (photo_id,),
            )
        ]
        detections = [
            (detector, Detection(label, score, (x1, y1, x2, y2), area))
            for detector, label, score, x1, y1, x2, y2, area in self.conn.execute(
                "SELECT detector, label, score, x1, y1, x2, y2, area FROM detections "
                "WHERE photo_id = ? ORDER BY score DESC",
                (photo_id,),
            )
        ]
        unrecognised = [
            str(r[0])
            for r in self.conn.execute(
                "SELECT source FROM unrecognised WHERE photo_id = ? ORDER BY source", (photo_id,)
            )
        ]
        text = self.text_of([photo_id]).get(photo_id, [])
        return PhotoDetails(PhotoRow(*row), labels, detections, unrecognised, text)

    def failures(self) -> list[tuple[str, str]]:
        """(relative path, reason) of every photo that could not be read, by path."""
        return [
            (str(p), e or "")
            for p, e in self.conn.execute(
                f"SELECT path, error FROM photos WHERE status = '{FAILED}' ORDER BY path"
            )
        ]

    def status_counts(self) -> dict[str, int]:
        """status ("ok", "failed") -> number of photos."""
        return {
            s: int(n) for s, n in self.conn.execute("SELECT status, COUNT(*) FROM photos GROUP BY status")
        }

    # ---------------------------------------------------------------------------------------- search
    def has_label(self, name: str) -> bool:
        """Whether some photo has a custom label (or a non-ImageNet class) called `name`, any case."""
        return (
            self.conn.execute(
                f"SELECT 1 FROM labels WHERE label = ? COLLATE NOCASE AND {_CUSTOM} LIMIT 1",
                (name,),
            ).fetchone()
            is not None
        )

    def has_detection(self, name: str) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM detections WHERE label = ? COLLATE NOCASE LIMIT 1", (name,)
            ).fetchone()
            is not None
        )

    def label_names(self) -> set[str]:
        """Every label and detected class name in the library."""
        return {r[0] for r in self.conn.execute("SELECT DISTINCT label FROM labels")} | {
            r[0] for r in self.conn.execute("SELECT DISTINCT label FROM detections")
        }

    def custom_label_names(self) -> set[str]:
        """The names of the labels the user's labelers gave (and of a non-ImageNet classifier's classes)."""
        return {r[0] for r in self.conn.execute(f"SELECT DISTINCT label FROM labels WHERE {_CUSTOM}")}

    def matching_detections(self, names: Iterable[str]) -> list[DetectionHit]:
        """Every detection whose class is one of `names` (any case), with its box's share of the photo
        and, from a segmenter, its own (its mask's)."""
        names = sorted(set(names))
        found: list[DetectionHit] = []
        for chunk in chunks(names, _IN_CHUNK):
            found += [
                DetectionHit(
                    int(i),
                    str(label),
                    float(score),
                    None if area is None else float(area),
                    None if fill is None else float(fill),
                )
                for i, label, score, area, fill in self.conn.execute(
                    "SELECT d.photo_id, d.label, d.score, "
                    f"{_BOX_AREA}, d.area "
                    "FROM detections d JOIN photos p ON p.id = d.photo_id "
                    f"WHERE p.status = '{OK}' AND d.label COLLATE NOCASE IN ({_marks(chunk)})",
                    tuple(chunk),
                )
            ]
        return found

    def prominent_detections(self, min_score: float, min_area: float) -> list[DetectionHit]:
        """Every detection of at least `min_score` covering at least `min_area` of its photo: what a
        photo is clearly of, to the detector."""
        return [
            DetectionHit(int(i), str(label), float(score), float(area))
            for i, label, score, area in self.conn.execute(
                "SELECT photo_id, label, score, area FROM (SELECT d.photo_id, d.label, d.score, "
                f"{_BOX_AREA} AS area "
                "FROM detections d JOIN photos p ON p.id = d.photo_id "
                f"WHERE p.status = '{OK}' AND d.score >= ?) WHERE area >= ?",
                (min_score, min_area),
            )
        ]

    def stored_class_mass(self, concepts: dict[str, float]) -> list[LabelHit]:
        """For photos indexed before the index kept the classifier's whole distribution (no `probs`
        vector yet): their stored top classes' probability on `concepts` (synset -> weight), summed,
        as (photo id, classifier, its best matching class, mass)."""
        if not concepts:
            return []
        values = ",".join("(?, ?)" for _ in concepts)
        params = [v for pair in concepts.items() for v in pair]
        rows = self.conn.execute(
            f"WITH q(concept, weight) AS (VALUES {values}) "
            "SELECT l.photo_id, l.source, l.label, l.score * q.weight AS part FROM labels l "
            "JOIN q ON q.concept = l.concept JOIN photos p ON p.id = l.photo_id "
            f"WHERE l.kind = 'class' AND p.status = '{OK}' AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.photo_id = l.photo_id AND e.space = ?) "
            "ORDER BY l.photo_id, part DESC",
            (*params, PROBS),
        )
        found: dict[int, LabelHit] = {}
        for photo_id, source, label, part in rows:
            hit = found.get(photo_id)
            if hit is None:
                found[photo_id] = LabelHit(int(photo_id), str(source), str(label), float(part))
            else:
                found[photo_id] = hit._replace(score=min(1.0, hit.score + float(part)))
        return list(found.values())

    # ---------------------------------------------------------------------------------- text in photos
    _TEXT_HIT = "SELECT t.photo_id, t.id, t.text, t.norm, t.score, t.size, t.x1, t.y1, t.x2, t.y2, t.words "

    @staticmethod
    def _text_hit(row: Sequence[Any]) -> TextHit:
        photo_id, line_id, text, norm, score, size, x1, y1, x2, y2, words = row
        parsed = tuple(tuple(w) for w in json.loads(words)) if words else ()
        return TextHit(
            int(photo_id), int(line_id), text, norm, float(score), float(size), (x1, y1, x2, y2), parsed
        )

    def text_lines_containing(self, fragments: Iterable[str]) -> list[TextHit]:
        """Lines whose normalised text contains any of `fragments` (normalised too): through the trigram
        index for fragments of three characters or more, by a scan for shorter ones."""
        long = sorted({f for f in fragments if len(f) >= 3})
        short = sorted({f for f in fragments if 0 < len(f) < 3})
        queries: list[tuple[str, str]] = [
            (
                "FROM text_lines t JOIN photos p ON p.id = t.photo_id WHERE instr(t.norm, ?) > 0",
                fragment,
            )
            for fragment in short
        ]
        if long:
            match = " OR ".join('"' + f.replace('"', '""') + '"' for f in long)
            queries.append(
                (
                    "FROM text_search s JOIN text_lines t ON t.id = s.rowid "
                    "JOIN photos p ON p.id = t.photo_id WHERE text_search MATCH ?",
                    match,
                )
            )
        hits: dict[int, TextHit] = {}
        for where, value in queries:
            for row in self.conn.execute(f"{self._TEXT_HIT}{where} AND p.status = '{OK}'", (value,)):
                hit = self._text_hit(row)
                hits[hit.line_id] = hit
        return sorted(hits.values(), key=lambda h: h.line_id)

    def text_of(self, ids: Sequence[int]) -> dict[int, list[TextHit]]:
        """Every stored line of these photos, in reading order."""
        out: dict[int, list[TextHit]] = {}
        for chunk in chunks(list(ids), _IN_CHUNK):
            for row in self.conn.execute(
                self._TEXT_HIT
                + f"FROM text_lines t WHERE t.photo_id IN ({_marks(chunk)}) ORDER BY t.photo_id, t.line",
                tuple(chunk),
            ):
                hit = self._text_hit(row)
                out.setdefault(hit.photo_id, []).append(hit)
        return out

    def has_text(self) -> bool:
        """Whether any line of text is stored."""
        return bool(self.conn.execute("SELECT EXISTS (SELECT 1 FROM text_lines)").fetchone()[0])

    def text_norms(self) -> Iterator[str]:
        """The normalised text of every stored line (the words a misspelt query is compared with)."""
        for (norm,) in self.conn.execute("SELECT norm FROM text_lines"):
            yield str(norm)

    def count_text_read(self) -> tuple[int, int]:
        """(photos whose text has been read, lines stored)."""
        read = self.conn.execute("SELECT COUNT(*) FROM photos WHERE text_reader IS NOT NULL").fetchone()[0]
        lines = self.conn.execute("SELECT COUNT(*) FROM text_lines").fetchone()[0]
        return int(read), int(lines)

    def matching_labels(self, names: Iterable[str]) -> list[LabelHit]:
        """Every custom label (and non-ImageNet class label) called one of `names`, any case."""
        names = sorted(set(names))
        found: list[LabelHit] = []
        for chunk in chunks(names, _IN_CHUNK):
            found += [
                LabelHit(int(i), str(source), str(label), float(score))
                for i, source, label, score in self.conn.execute(
                    "SELECT l.photo_id, l.source, l.label, l.score FROM labels l "
                    "JOIN photos p ON p.id = l.photo_id "
                    f"WHERE p.status = '{OK}' AND {_CUSTOM} "  # photos has no kind or concept column
                    f"AND l.label COLLATE NOCASE IN ({_marks(chunk)})",
                    tuple(chunk),
                )
            ]
        return found

    def filtered_ids(self, filters: Filters) -> set[int]:
        """Ids of the readable photos that pass the date and camera filters."""
        where, params = _filters_sql(filters)
        return {int(r[0]) for r in self.conn.execute(f"SELECT p.id FROM photos p WHERE {where}", params)}

    def content_groups(self) -> list[list[int]]:
        """Readable photos that share their content hash, as groups of ids (byte-identical copies)."""
        groups: dict[str, list[int]] = {}
        for photo_id, digest in self.conn.execute(
            "SELECT id, sha256 FROM photos WHERE sha256 IN (SELECT sha256 FROM photos "
            f"WHERE status = '{OK}' AND sha256 IS NOT NULL GROUP BY sha256 HAVING COUNT(*) > 1) "
            f"AND status = '{OK}' ORDER BY sha256, id"
        ):
            groups.setdefault(str(digest), []).append(int(photo_id))
        return list(groups.values())

    def photo_page(self, filters: Filters, offset: int, limit: int) -> tuple[int, list[int]]:
        """(how many readable photos pass the filters, the ids of `limit` of them from `offset`), newest
        first by the photo's date (`PHOTO_DATE`), then by path."""
        where, params = _filters_sql(filters)
        total = int(self.conn.execute(f"SELECT COUNT(*) FROM photos p WHERE {where}", params).fetchone()[0])
        rows = self.conn.execute(
            f"SELECT p.id FROM photos p WHERE {where} ORDER BY {PHOTO_DATE} DESC, p.path LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return total, [int(r[0]) for r in rows]

    def last_indexed(self) -> float | None:
        """When a photo was last indexed (seconds since the epoch), or None for an empty index."""
        row = self.conn.execute("SELECT MAX(indexed_at) FROM photos").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def summaries(self, ids: Sequence[int]) -> dict[int, PhotoSummary]:
        found: dict[int, PhotoSummary] = {}
        for chunk in chunks(list(ids), _IN_CHUNK):
            for photo_id, path, taken_at, camera in self.conn.execute(
                f"SELECT id, path, taken_at, camera FROM photos WHERE id IN ({_marks(chunk)})", tuple(chunk)
            ):
                found[int(photo_id)] = PhotoSummary(path, taken_at, camera)
        return found

    def labels_for_display(self, ids: Sequence[int], classes: int = 3) -> dict[int, list[str]]:
        """Per photo: its top `classes` classifier classes, each labeler's best label, the scene regions
        it clearly shows (`scene.SHOWN`), then the objects detected (most confident first)."""
        found: dict[int, list[str]] = {i: [] for i in ids}
        for chunk in chunks(list(ids), _IN_CHUNK):
            marks = _marks(chunk)
            taken: dict[tuple[int, str, str], int] = {}
            regions: dict[int, list[str]] = {}
            for photo_id, label, kind, source, score in self.conn.execute(
                f"SELECT photo_id, label, kind, source, score FROM labels WHERE photo_id IN ({marks}) "
                "ORDER BY photo_id, kind, score DESC",
                tuple(chunk),
            ):
                if _is_scene(kind, source):
                    if score >= scene.SHOWN:
                        regions.setdefault(photo_id, []).append(label)
                    continue
                key = (photo_id, kind, "" if kind == "class" else source)
                count = taken.get(key, 0)
                if count >= (classes if kind == "class" else 1):
                    continue
                taken[key] = count + 1
                found[photo_id].append(label)
            for photo_id, shown in regions.items():
                found[photo_id] += shown
            for photo_id, label in self.conn.execute(
                f"SELECT photo_id, label FROM detections WHERE photo_id IN ({marks}) "
                "GROUP BY photo_id, label ORDER BY photo_id, MAX(score) DESC",
                tuple(chunk),
            ):
                if label not in found[photo_id]:
                    found[photo_id].append(label)
        return found


def _filters_sql(filters: Filters) -> tuple[str, list[Any]]:
    """(conditions on `photos p`, parameters): readable photos that pass the filters."""
    conditions, params = [f"p.status = '{OK}'"], []
    if filters.after:
        conditions.append(f"{PHOTO_DATE} >= ?")
        params.append(filters.after)
    if filters.before:
        conditions.append(f"{PHOTO_DATE} < ?")
        params.append(filters.before)
    if filters.camera:
        conditions.append("p.camera LIKE ? ESCAPE '\\'")
        params.append(f"%{_like_escaped(filters.camera)}%")
    if filters.folder:
        conditions.append("p.path LIKE ? ESCAPE '\\'")
        params.append(f"{_like_escaped(filters.folder)}/%")
    if filters.label:
        conditions.append(
            "(EXISTS (SELECT 1 FROM labels l WHERE l.photo_id = p.id AND l.label = ? COLLATE NOCASE) OR "
            "EXISTS (SELECT 1 FROM detections d WHERE d.photo_id = p.id AND d.label = ? COLLATE NOCASE))"
        )
        params += [filters.label, filters.label]
    return " AND ".join(conditions), params


def _like_escaped(text: str) -> str:
    """`text` for a LIKE pattern with '\\' as its escape: its own %, _ and \\ match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
