"""Bring a photo index up to date with its folder: only new and changed photos are computed.

One run:
1. walks the folder and stats every photo (no file is opened yet);
2. compares with the index: same path, size and mtime = unchanged (failed photos included, so they
   are not retried until they change); a photo whose content hash matches a vanished entry was moved
   or renamed and keeps its entry, id and results; a copy of an indexed photo copies its results;
   entries whose file is gone are dropped. All of that is one transaction;
3. runs the classifier once per remaining photo (features and logits from one forward pass), the
   detector and the labelers, reading each file once for its pixels, content hash and EXIF, and
   commits every batch in its own transaction;
4. catches up older photos with a detector, labeler or text-image model they have not seen yet.

A run killed at any point leaves every committed batch in place; the next run does the rest.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.arrays import softmax
from pixelsift.core.hashing import sha256_bytes, sha256_file
from pixelsift.core.progress import progress_bar
from pixelsift.core.sequences import chunks
from pixelsift.errors import UsageError
from pixelsift.imaging.images import open_image, read_file, walk_images
from pixelsift.imaging.pipeline import iter_batches
from pixelsift.library.db import get_meta, next_seq, set_meta, transaction, vector_to_blob
from pixelsift.library.labelers import AUTO, NONE, Labeler, choose_detector, load_labeler
from pixelsift.library.metadata import PhotoMetadata, read_exif
from pixelsift.library.vocabulary import Vocabulary
from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")

LABELS_PER_PHOTO = 5  # ImageNet classes kept per photo (usually > 90% of the probability mass)
CUSTOM_LABELS_PER_PHOTO = 3
DETECTOR_MIN_SIZE = 640  # decode JPEGs at least this large when a detector will look at them
FEATURES, CLIP = "features", "clip"


@dataclass
class IndexOptions:
    """How to index. `detector`: "auto" (the default detector when one is available), "none" or a name;
    None = what the library used last time (else "auto"). `labelers`: files saved by `pixelsift train`,
    added to the ones the library remembers."""

    model: str | None = None
    detector: str | None = None
    labelers: Sequence[str | os.PathLike[str]] = ()
    text_image: str | None = None  # "auto", "none" or a model name; None = last time's (else "auto")
    exclude: Sequence[str] = ()
    run_options: RunOptions = field(default_factory=RunOptions)  # the classifier's, detector's, labelers'
    progress: bool | None = False


@dataclass
class IndexReport:
    """What one `update` did."""

    root: str
    photos: int = 0  # photos found in the folder
    unchanged: int = 0
    added: int = 0
    updated: int = 0  # changed content, recomputed
    moved: int = 0
    copied: int = 0
    touched: int = 0  # mtime changed, content did not
    deleted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) newly failed this run
    still_failed: int = 0  # failed in an earlier run and unchanged since (not retried)
    annotated: dict[str, int] = field(default_factory=dict)  # catch-up pass -> photos done
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [
            f"{self.photos} photos",
            f"{self.added} new",
            f"{self.updated} changed",
            f"{self.moved} moved",
            f"{self.copied} copied",
            f"{self.deleted} removed",
            f"{self.unchanged + self.touched} unchanged",
        ]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.still_failed:
            parts.append(f"{self.still_failed} failed earlier (not retried until they change)")
        parts += [f"{n} {what}" for what, n in self.annotated.items() if n]
        return f"indexed {self.root}: " + ", ".join(parts) + f" in {self.seconds:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["failed"] = [{"path": p, "error": e} for p, e in self.failed]
        return out


@dataclass
class _Row:
    id: int
    size: int
    mtime_ns: int
    sha256: str | None
    status: str


@dataclass
class Decoded:
    """What the index reads from one photo file, besides the model's pixels."""

    size: int
    mtime_ns: int
    sha256: str
    metadata: PhotoMetadata
    image: Any = None  # the decoded PIL image, kept when a detector will look at it
    scale: float = 1.0  # full-resolution pixels per decoded pixel (JPEG draft decoding)
    clip_pixels: np.ndarray | None = None


def photo_decoder(
    preprocess: Callable[[Any], np.ndarray] | None,
    min_size: int | None,
    keep_image: bool = False,
    clip_preprocess: Callable[[Any], np.ndarray] | None = None,
) -> Callable[[str], tuple[np.ndarray, Decoded]]:
    """A pipeline decoder that reads each file once: pixels for the model, plus hash, EXIF and size."""

    def decode(path: str) -> tuple[np.ndarray, Decoded]:
        data, size, mtime_ns = read_file(path)
        img = open_image(data, min_size=min_size, name=path)
        metadata = read_exif(data)
        scale = (metadata.width / img.width) if metadata.width and img.width else 1.0
        info = Decoded(size, mtime_ns, sha256_bytes(data), metadata, img if keep_image else None, scale)
        if clip_preprocess is not None:
            info.clip_pixels = clip_preprocess(img)
        pixels = preprocess(img) if preprocess is not None else np.zeros((3, 1, 1), np.float32)
        return pixels, info

    return decode


def scan_folder(root: Path, exclude: Sequence[str] = ()) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every photo under `root` (hidden files and folders skipped)."""
    found: dict[str, tuple[int, int]] = {}
    prefix = len(str(root).rstrip(os.sep)) + 1  # plain strings: pathlib costs more than stat here
    for path in walk_images(root, exclude=exclude):
        name = str(path)
        try:
            stat = os.stat(name)
        except OSError:  # vanished between listing and stat, or a broken symlink
            continue
        found[name[prefix:].replace(os.sep, "/")] = (stat.st_size, stat.st_mtime_ns)
    return found


class Indexer:
    """One `update` of one library. Use through `PhotoIndex.update`."""

    def __init__(self, conn: sqlite3.Connection, root: Path, options: IndexOptions):
        self.conn = conn
        self.root = root
        self.options = options
        self.report = IndexReport(root=str(root))
        self._model: Any = None
        self._vocab: Any = None
        self._text_image: Any = None
        self._text_image_loaded = False

    # ----------------------------------------------------------------- settings remembered in the index
    def _settle_model(self) -> str:
        stored = get_meta(self.conn, "model")
        wanted = self.options.model or stored or DEFAULT_CLASSIFIER
        if stored and wanted != stored:
            raise UsageError(
                f"this index was built with model {stored!r}; its vectors cannot be mixed with {wanted!r}'s. "
                f"Use --model {stored}, or index into a new file with --db"
            )
        return wanted

    def _settle_detector(self, photos_to_compute: bool) -> Any:
        """This run's detector: the one asked for (and remembered), else the one remembered, else auto.

        A detector that is not asked for on this command line is loaded only when there is work for it:
        new or changed photos, or older photos it has not looked at. An unchanged library loads none.
        """
        choice = self.options.detector or get_meta(self.conn, "detector") or AUTO
        if self.options.detector:
            # asked for on this command line: an error stops the run
            detector = choose_detector(choice, self.options.run_options)
            with transaction(self.conn):
                set_meta(self.conn, "detector", choice)
            return detector
        if choice == NONE:
            return None
        if not photos_to_compute:
            name = choice
            if choice == AUTO:
                from pixelsift.detect import default_detector_name

                name = default_detector_name() or NONE
            if name == NONE or not self._photos_where("p.detector IS NOT ?", (name,)):
                return None  # every photo has been seen by this detector (or there is none)
        try:
            return choose_detector(choice, self.options.run_options)
        except Exception as exc:
            log.warning("the detector this library used (%s) is not available (%s); skipping", choice, exc)
            return None

    def _settle_labelers(self) -> list[Labeler]:
        remembered = json.loads(get_meta(self.conn, "labelers", "[]") or "[]")
        paths = [entry["path"] for entry in remembered]
        for path in self.options.labelers:
            resolved = str(Path(path).expanduser().resolve())
            if resolved not in paths:
                paths.append(resolved)
        labelers: list[Labeler] = []
        for path in paths:
            given = any(str(Path(p).expanduser().resolve()) == path for p in self.options.labelers)
            try:
                labeler = load_labeler(path)
            except Exception as exc:
                if given:
                    raise
                log.warning(
                    "labeler %s is not usable any more (%s); its labels stay, new photos go without",
                    path,
                    exc,
                )
                continue
            if any(other.name == labeler.name for other in labelers):
                raise UsageError(f"two labelers are named {labeler.name!r}; rename one of the files")
            labelers.append(labeler)
        previous = {entry["name"]: entry for entry in remembered}
        with transaction(self.conn):
            for labeler in labelers:
                old = previous.get(labeler.name)
                if old and old["sha256"] != labeler.sha256:  # retrained: its old labels are stale
                    self.conn.execute(
                        "DELETE FROM labels WHERE kind = 'custom' AND source = ?", (labeler.name,)
                    )
            entries = {e["name"]: e for e in remembered}
            for labeler in labelers:
                entries[labeler.name] = {"name": labeler.name, "path": labeler.path, "sha256": labeler.sha256}
            set_meta(self.conn, "labelers", json.dumps(list(entries.values())))
        return labelers

    def _settle_text_image(self) -> Any:
        from pixelsift.runtime.text_image import load_text_image_model

        choice = self.options.text_image or get_meta(self.conn, "text_image") or AUTO
        model = load_text_image_model(choice, self.options.run_options)
        if self.options.text_image:
            with transaction(self.conn):
                set_meta(self.conn, "text_image", self.options.text_image)
        if model is not None:
            stored = get_meta(self.conn, "text_image_model")
            if stored and stored != model.name:
                with transaction(self.conn):  # another text-image space: the old vectors mean nothing to it
                    self.conn.execute("DELETE FROM embeddings WHERE space = ?", (CLIP,))
            with transaction(self.conn):
                set_meta(self.conn, "text_image_model", model.name)
        return model

    def model(self) -> Any:
        """The classifier, loaded on first need (an unchanged library never loads it)."""
        if self._model is None:
            from pixelsift.runtime.loaded import ImageModel

            self._model = ImageModel.load(self.model_name, self.options.run_options)
            with transaction(self.conn):
                set_meta(self.conn, "model", self.model_name)
                set_meta(self.conn, "embed_dim", str(self._model.embed_dim))
        return self._model

    def vocab(self) -> Any:
        if self._vocab is None:
            self._vocab = Vocabulary.load()
        return self._vocab

    # ----------------------------------------------------------------------------------------- the run
    def run(self) -> IndexReport:
        started = time.perf_counter()
        self.model_name = self._settle_model()
        with transaction(self.conn):
            set_meta(self.conn, "root", str(self.root))
        on_disk = scan_folder(self.root, self.options.exclude)
        self.report.photos = len(on_disk)
        to_compute = self._apply_moves_and_deletions(on_disk)
        self.detector = self._settle_detector(photos_to_compute=bool(to_compute))
        self.labelers = self._settle_labelers()
        self.text_image = self._settle_text_image()
        if to_compute:
            self._compute(to_compute, on_disk)
        self._catch_up()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _rows(self) -> dict[str, _Row]:
        cursor = self.conn.execute("SELECT path, id, size, mtime_ns, sha256, status FROM photos")
        return {path: _Row(*rest) for path, *rest in cursor}

    def _apply_moves_and_deletions(self, on_disk: dict[str, tuple[int, int]]) -> list[str]:
        """Step 2 of the module docstring; returns the relative paths that need computing."""
        rows = self._rows()
        new = [p for p in on_disk if p not in rows]
        changed = [p for p in on_disk if p in rows and (rows[p].size, rows[p].mtime_ns) != on_disk[p]]
        gone = {p: r for p, r in rows.items() if p not in on_disk}
        unchanged = [p for p in on_disk if p in rows and p not in changed]
        self.report.unchanged = sum(rows[p].status == "ok" for p in unchanged)
        self.report.still_failed = sum(rows[p].status == "failed" for p in unchanged)

        # Only a file whose size matches a vanished or indexed one can be a move or a copy: hash those.
        gone_by_hash = {r.sha256: p for p, r in gone.items() if r.sha256}
        kept_by_hash = {rows[p].sha256: p for p in unchanged if rows[p].sha256 and rows[p].status == "ok"}
        sizes = {r.size for r in gone.values()} | {rows[p].size for p in unchanged}
        to_hash = [p for p in new if on_disk[p][0] in sizes] + changed
        hashes = self._hash_files(to_hash)

        moves: list[tuple[str, str]] = []  # (old path, new path)
        copies: list[tuple[str, str]] = []  # (indexed path, new path)
        touched: list[str] = []
        compute: list[str] = []
        for path in new:
            digest = hashes.get(path)
            if digest and digest in gone_by_hash:
                moves.append((gone_by_hash.pop(digest), path))
            elif digest and digest in kept_by_hash:
                copies.append((kept_by_hash[digest], path))
            else:
                compute.append(path)
        for path in changed:
            if hashes.get(path) and hashes[path] == rows[path].sha256:
                touched.append(path)
            else:
                compute.append(path)
        moved_from = {old for old, _ in moves}
        deleted = [r.id for p, r in gone.items() if p not in moved_from]

        if moves or copies or touched or deleted:
            with transaction(self.conn):
                seq = next_seq(self.conn)
                for old, path in moves:
                    size, mtime_ns = on_disk[path]
                    self.conn.execute(
                        "UPDATE photos SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
                        (path, size, mtime_ns, rows[old].id),
                    )
                for path in touched:
                    size, mtime_ns = on_disk[path]
                    self.conn.execute(
                        "UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?",
                        (size, mtime_ns, rows[path].id),
                    )
                for source, path in copies:
                    self._copy_entry(rows[source].id, path, on_disk[path], seq)
                for chunk in chunks(deleted, 500):
                    marks = ",".join("?" * len(chunk))
                    self.conn.execute(f"DELETE FROM photos WHERE id IN ({marks})", tuple(chunk))
        self.report.moved, self.report.copied = len(moves), len(copies)
        self.report.touched, self.report.deleted = len(touched), len(deleted)
        self.report.added = sum(p not in rows for p in compute)
        self.report.updated = len(compute) - self.report.added
        return sorted(compute)

    def _hash_files(self, paths: list[str]) -> dict[str, str]:
        def one(path: str) -> tuple[str, str | None]:
            try:
                return path, sha256_file(str(self.root / path))
            except OSError:
                return path, None  # unreadable: the compute step records why

        with ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 2))) as pool:
            return {p: h for p, h in pool.map(one, paths) if h}

    def _copy_entry(self, source_id: int, path: str, stat: tuple[int, int], seq: int) -> None:
        columns = "sha256, status, error, width, height, taken_at, camera, latitude, longitude, detector, "
        columns += "indexed_at"
        new_id = self.conn.execute(
            f"INSERT INTO photos (path, size, mtime_ns, {columns}) "
            f"SELECT ?, ?, ?, {columns} FROM photos WHERE id = ? RETURNING id",
            (path, *stat, source_id),
        ).fetchone()[0]
        self.conn.execute(
            "INSERT INTO labels (photo_id, kind, source, label, concept, score) "
            "SELECT ?, kind, source, label, concept, score FROM labels WHERE photo_id = ?",
            (new_id, source_id),
        )
        self.conn.execute(
            "INSERT INTO detections (photo_id, detector, label, score, x1, y1, x2, y2) "
            "SELECT ?, detector, label, score, x1, y1, x2, y2 FROM detections WHERE photo_id = ?",
            (new_id, source_id),
        )
        self.conn.execute(
            "INSERT INTO embeddings (photo_id, space, seq, vector) "
            "SELECT ?, space, ?, vector FROM embeddings WHERE photo_id = ?",
            (new_id, seq, source_id),
        )

    # ------------------------------------------------------------------------ step 3: new and changed
    def _compute(self, paths: list[str], on_disk: dict[str, tuple[int, int]]) -> None:
        model = self.model()
        same_backbone = [lab for lab in self.labelers if lab.backbone == self.model_name]
        min_size = max(model.preprocessing.resize, DETECTOR_MIN_SIZE if self.detector else 0)
        decode = photo_decoder(
            model.preprocessing,
            min_size,
            keep_image=self.detector is not None,
            clip_preprocess=self.text_image.preprocessing if self.text_image else None,
        )
        outputs = model.iter_outputs(
            (self.root / p for p in paths),
            progress=self.options.progress,
            total=len(paths),
            desc="index",
            decode=decode,
        )
        pending: list[tuple[Any, Any, Any]] = []
        for result in outputs:
            pending.append(result)
            if len(pending) >= model.batch_size:
                self._write_batch(pending, on_disk, same_backbone)
                pending = []
        if pending:
            self._write_batch(pending, on_disk, same_backbone)

    def _write_batch(
        self,
        results: list[tuple[Any, Any, Any]],
        on_disk: dict[str, tuple[int, int]],
        labelers: list[Labeler],
    ) -> None:

        model = self.model()
        ok = [(item, feats, logits) for item, feats, logits in results if feats is not None]
        custom = [lab.predict(np.stack([f for _, f, _ in ok])) for lab in labelers] if ok else []
        clip_vectors = None
        if ok and self.text_image is not None:
            clip_vectors = self.text_image.encode_pixels(
                np.stack([item.info.clip_pixels for item, _, _ in ok])
            )
        detections = [self._detect(item.info) for item, _, _ in ok] if self.detector is not None else None
        concepts = self.vocab().imagenet if len(model.categories) == 1000 else None
        now = time.time()
        with transaction(self.conn):
            seq = next_seq(self.conn)
            for item, _, _ in results:
                if item.ok:
                    continue
                rel = Path(item.path).relative_to(self.root).as_posix()
                size, mtime_ns = on_disk.get(rel, (0, 0))
                self._upsert(rel, size, mtime_ns, None, "failed", item.error, PhotoMetadata(), None, now)
                self.report.failed.append((item.path, item.error or "unreadable"))
                log.warning("%s: %s", item.path, item.error)
            for row, (item, features, logits) in enumerate(ok):
                info: Decoded = item.info
                rel = Path(item.path).relative_to(self.root).as_posix()
                detector_name = self.detector.name if self.detector is not None else None
                photo_id = self._upsert(
                    rel, info.size, info.mtime_ns, info.sha256, "ok", None, info.metadata, detector_name, now
                )
                probabilities = softmax(logits)
                best = np.argsort(-probabilities, kind="stable")[:LABELS_PER_PHOTO]
                self.conn.executemany(
                    "INSERT INTO labels (photo_id, kind, source, label, concept, score) "
                    "VALUES (?, 'class', ?, ?, ?, ?)",
                    [
                        (
                            photo_id,
                            model.name,
                            model.categories[i],
                            concepts[i] if concepts else None,
                            float(probabilities[i]),
                        )
                        for i in best
                    ],
                )
                for labeler, predictions in zip(labelers, custom, strict=True):
                    self._insert_custom(photo_id, labeler.name, predictions[row])
                if detections is not None:
                    self._insert_detections(photo_id, detector_name or "", detections[row])
                self.conn.execute(
                    "INSERT INTO embeddings (photo_id, space, seq, vector) VALUES (?, ?, ?, ?)",
                    (photo_id, FEATURES, seq, vector_to_blob(features)),
                )
                if clip_vectors is not None:
                    self.conn.execute(
                        "INSERT INTO embeddings (photo_id, space, seq, vector) VALUES (?, ?, ?, ?)",
                        (photo_id, CLIP, seq, vector_to_blob(clip_vectors[row])),
                    )

    def _upsert(
        self,
        rel: str,
        size: int,
        mtime_ns: int,
        sha256: str | None,
        status: str,
        error: str | None,
        meta: PhotoMetadata,
        detector: str | None,
        now: float,
    ) -> int:
        """Insert or replace the entry for `rel`, keeping its id; its old results are removed."""
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
                indexed_at = excluded.indexed_at
            RETURNING id
            """,
            (
                rel,
                size,
                mtime_ns,
                sha256,
                status,
                error,
                meta.width,
                meta.height,
                meta.taken_at,
                meta.camera,
                meta.latitude,
                meta.longitude,
                detector,
                now,
            ),
        ).fetchone()[0]
        for table in ("labels", "detections", "embeddings"):
            self.conn.execute(f"DELETE FROM {table} WHERE photo_id = ?", (photo_id,))
        return int(photo_id)

    def _insert_custom(self, photo_id: int, source: str, predictions: list[tuple[str, float]]) -> None:
        self.conn.executemany(
            "INSERT INTO labels (photo_id, kind, source, label, concept, score) "
            "VALUES (?, 'custom', ?, ?, NULL, ?)",
            [(photo_id, source, label, score) for label, score in predictions],
        )

    def _insert_detections(self, photo_id: int, detector: str, found: list[tuple]) -> None:
        self.conn.execute("DELETE FROM detections WHERE photo_id = ?", (photo_id,))
        self.conn.executemany(
            "INSERT INTO detections (photo_id, detector, label, score, x1, y1, x2, y2) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(photo_id, detector, *row) for row in found],
        )

    def _detect(self, info: Decoded) -> list[tuple]:
        """Detections as (label, score, x1, y1, x2, y2) in full-resolution pixels."""
        result = self.detector.detect_image(info.image)
        boxes = np.asarray(result.boxes, dtype=np.float64).reshape(-1, 4) * info.scale
        return [
            (str(name), float(score), *map(float, box))
            for name, score, box in zip(result.class_names, np.asarray(result.scores), boxes, strict=True)
        ]

    # ------------------------------------------------------------ step 4: catch up older photos
    def _catch_up(self) -> None:
        for labeler in self.labelers:
            missing = self._photos_where(
                "NOT EXISTS (SELECT 1 FROM labels l "
                "WHERE l.photo_id = p.id AND l.kind = 'custom' AND l.source = ?)",
                (labeler.name,),
            )
            if missing:
                if labeler.backbone == self.model_name:
                    done = self._label_from_features(labeler, missing)
                else:
                    done = self._label_with_backbone(labeler, missing)
                self.report.annotated[f"labelled by {labeler.name}"] = done
        need_detect: list[tuple[int, str]] = []
        if self.detector is not None:
            need_detect = self._photos_where("p.detector IS NOT ?", (self.detector.name,))
        need_clip: list[tuple[int, str]] = []
        if self.text_image is not None:
            need_clip = self._photos_where(
                "NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.photo_id = p.id AND e.space = ?)", (CLIP,)
            )
        if need_detect or need_clip:
            self._pixel_pass(need_detect, need_clip)

    def _photos_where(self, condition: str, params: tuple) -> list[tuple[int, str]]:
        sql = f"SELECT p.id, p.path FROM photos p WHERE p.status = 'ok' AND {condition} ORDER BY p.id"
        return [(int(i), str(p)) for i, p in self.conn.execute(sql, params)]

    def _label_from_features(self, labeler: Labeler, photos: list[tuple[int, str]]) -> int:
        """Label photos from their stored features: no image is decoded again."""
        done = 0
        for chunk in chunks(photos, 256):
            ids = [i for i, _ in chunk]
            marks = ",".join("?" * len(ids))
            rows = self.conn.execute(
                f"SELECT photo_id, vector FROM embeddings WHERE space = ? AND photo_id IN ({marks})",
                (FEATURES, *ids),
            ).fetchall()
            if not rows:
                continue
            features = np.stack([np.frombuffer(blob, "<f4") for _, blob in rows])
            predictions = labeler.predict(features, CUSTOM_LABELS_PER_PHOTO)
            with transaction(self.conn):
                for (photo_id, _), labels in zip(rows, predictions, strict=True):
                    self.conn.execute(
                        "DELETE FROM labels WHERE photo_id = ? AND kind = 'custom' AND source = ?",
                        (photo_id, labeler.name),
                    )
                    self._insert_custom(photo_id, labeler.name, labels)
            done += len(rows)
        return done

    def _label_with_backbone(self, labeler: Labeler, photos: list[tuple[int, str]]) -> int:
        """A labeler trained on another backbone needs that backbone's features: one more pass."""
        from pixelsift.runtime.loaded import ImageModel

        backbone = ImageModel.load(labeler.backbone, self.options.run_options)
        ids = {str(self.root / p): i for i, p in photos}
        done = 0
        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            predictions = labeler.predict(np.stack([f for _, f in pending]), CUSTOM_LABELS_PER_PHOTO)
            with transaction(self.conn):
                for (photo_id, _), labels in zip(pending, predictions, strict=True):
                    self._insert_custom(photo_id, labeler.name, labels)
            pending.clear()

        for item, features, _ in backbone.iter_outputs(
            list(ids),
            progress=self.options.progress,
            total=len(ids),
            desc=labeler.name,
        ):
            if features is None:
                log.warning("%s: %s", item.path, item.error)
                continue
            pending.append((ids[item.path], features))
            done += 1
            if len(pending) >= 64:
                flush()
        if pending:
            flush()
        return done

    def _pixel_pass(self, need_detect: list[tuple[int, str]], need_clip: list[tuple[int, str]]) -> None:
        """Decode older photos once more for a detector or text-image model they have not met yet."""
        detect_ids = {i for i, _ in need_detect}
        clip_ids = {i for i, _ in need_clip}
        photos = sorted({*need_detect, *need_clip})
        decode = photo_decoder(
            None,
            DETECTOR_MIN_SIZE
            if detect_ids
            else (self.text_image.preprocessing.resize if self.text_image else None),
            keep_image=bool(detect_ids),
            clip_preprocess=self.text_image.preprocessing if clip_ids else None,
        )

        by_path = {str(self.root / p): i for i, p in photos}
        detected = encoded = 0
        with progress_bar(total=len(photos), desc="catch up", enabled=self.options.progress) as bar:
            for batch in iter_batches(
                list(by_path), decode, batch_size=16, workers=self.options.run_options.workers
            ):
                ok = batch.ok_items
                clip_rows = [it for it in ok if by_path[it.path] in clip_ids]
                vectors = (
                    self.text_image.encode_pixels(np.stack([it.info.clip_pixels for it in clip_rows]))
                    if clip_rows
                    else None
                )
                found = {it.path: self._detect(it.info) for it in ok if by_path[it.path] in detect_ids}
                with transaction(self.conn):
                    seq = next_seq(self.conn)
                    for item in batch.items:
                        if not item.ok:
                            log.warning("%s: %s", item.path, item.error)
                    for path, rows in found.items():
                        self._insert_detections(by_path[path], self.detector.name, rows)
                        self.conn.execute(
                            "UPDATE photos SET detector = ? WHERE id = ?", (self.detector.name, by_path[path])
                        )
                    for row, item in enumerate(clip_rows):
                        assert vectors is not None
                        self.conn.execute(
                            "INSERT OR REPLACE INTO embeddings (photo_id, space, seq, vector) "
                            "VALUES (?, ?, ?, ?)",
                            (by_path[item.path], CLIP, seq, vector_to_blob(vectors[row])),
                        )
                detected += len(found)
                encoded += len(clip_rows)
                bar.update(len(batch.items))
        if detected:
            self.report.annotated[f"searched for objects ({self.detector.name})"] = detected
        if encoded:
            self.report.annotated[f"encoded for free text ({self.text_image.name})"] = encoded
