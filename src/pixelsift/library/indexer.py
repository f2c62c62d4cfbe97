"""Bring a photo index up to date with its folder: only new and changed photos are computed.

One run:
1. settles what it uses (`reconcile.Reconciler`: the models and sources the library remembers, and
   what this command line asks) and walks the folder, stating every photo (no file is opened yet);
2. compares with the index: same path, size and mtime = unchanged (failed photos included, so they
   are not retried until they change); a photo whose content hash matches a vanished entry was moved
   or renamed and keeps its entry, id and results; a copy of an indexed photo copies its results;
   entries whose file is gone are dropped. All of that is one transaction;
3. new and changed photos: each file is read and decoded once (`decoding.photo_decoder`: pixels,
   hash, EXIF, every source's input), the classifier and every evidence source (`sources`) compute
   on the same batch in the compute lanes, and every batch is committed in its own transaction
   (results of `pixelsift batch` jobs are taken instead, matched by content hash, with --from-batch);
4. catch-up: older photos a source owes (new to the library, or changed) are decoded once for all
   the sources that owe them, through the same lanes; labels of a labeler on the classifier's backbone
   and probabilities an old index lacks come from the stored features, without decoding.

A run killed at any point leaves every committed batch in place; the next run does the rest.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.config import available_cpus
from pixelsift.core.arrays import softmax
from pixelsift.core.hashing import sha256_bytes, sha256_file
from pixelsift.core.progress import progress_bar
from pixelsift.core.sequences import chunks
from pixelsift.errors import ImageError
from pixelsift.imaging.images import read_file
from pixelsift.imaging.pipeline import Batch, Item, iter_computed
from pixelsift.library.changes import Stat, paths_to_hash, plan_changes, scan_folder
from pixelsift.library.decoding import Decoded, photo_decoder
from pixelsift.library.from_batch import BatchResults
from pixelsift.library.metadata import PhotoMetadata, read_exif
from pixelsift.library.reconcile import Reconciler
from pixelsift.library.rows import (
    FAILED,
    FEATURES,
    OK,
    PROBS,
    Detection,
    PhotoRecord,
)
from pixelsift.library.sources import (
    DetectorSource,
    FeaturesLabeler,
    LabelerSource,
    SceneSource,
    Source,
    TextImageSource,
    TextSource,
)
from pixelsift.library.store import LibraryStore
from pixelsift.models.vocabulary import Vocabulary
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")

LABELS_PER_PHOTO = 5  # ImageNet classes kept per photo (usually > 90% of the probability mass)


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
    follow_links: bool = False  # a symbolic link out of the library's folder is followed too
    run_options: RunOptions = field(default_factory=RunOptions)  # the classifier's, detector's, labelers'
    progress: bool | None = False
    agnostic_nms: bool = False  # the detector keeps one box per object, whatever its classes
    from_batch: Sequence[str | os.PathLike[str]] = ()  # `pixelsift batch` output folders to take results from
    ocr: bool | None = None  # read the text in photos; None = what the library did last time (else no)
    sources: Sequence[Source] = ()  # more evidence sources (`library.sources.Source`) for every photo


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

    def summary(self, with_root: bool = True) -> str:
        """ "indexed ROOT: 3 photos, 1 new, ... in 0.4 s" (`with_root=False`: without "indexed ROOT: ",
        for a page that never shows the server's paths)."""
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
        counts = ", ".join(parts) + f" in {self.seconds:.1f} s"
        return f"indexed {self.root}: {counts}" if with_root else counts

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["failed"] = [{"path": p, "error": e} for p, e in self.failed]
        return out


class Indexer:
    """One `update` of one library. Use through `PhotoIndex.update`."""

    def __init__(self, store: LibraryStore, root: Path, options: IndexOptions):
        self.store = store
        self.root = root
        self.options = options
        self.report = IndexReport(root=str(root))
        self._model: Any = None
        self._vocab: Any = None
        self._text_image: Any = None
        self._text_image_loaded = False
        self.batch: BatchResults | None = None

    def _labeler_sources(self, photos_to_compute: bool) -> list[Source]:
        """The labelers on another backbone than the classifier, as sources of their own (their
        backbone runs on the photo's one decode), loaded only when some photo needs them."""
        return [
            LabelerSource(labeler, self.options.run_options)
            for labeler in self.labelers
            if labeler.backbone != self.model_name
            and (photos_to_compute or self.store.photos_without_labels_of(labeler.name))
        ]

    def model(self) -> Any:
        """The classifier, loaded on first need (an unchanged library never loads it)."""
        if self._model is None:
            from pixelsift.runtime.loaded import ImageModel  # imports torch: only when photos need it

            self._model = ImageModel.load(self.model_name, self.options.run_options)
            with self.store.transaction():
                self.store.save_settings(model=self.model_name, embed_dim=int(self._model.embed_dim))
        return self._model

    def vocab(self) -> Any:
        if self._vocab is None:
            self._vocab = Vocabulary.load()
        return self._vocab

    # ----------------------------------------------------------------------------------------- the run
    def run(self) -> IndexReport:
        started = time.perf_counter()
        choices = Reconciler(self.store, self.options)
        self.model_name = choices.model_name()
        with self.store.transaction():
            self.store.save_settings(root=str(self.root))
        on_disk = scan_folder(
            self.root, self.options.exclude, on_skip=self._skipped, follow_links=self.options.follow_links
        )
        self.report.photos = len(on_disk) + len(self.report.failed)  # failed so far: skipped entries
        if self.options.from_batch:
            self.batch = BatchResults(self.options.from_batch, self.model_name)
        to_compute = self._apply_moves_and_deletions(on_disk)
        self.detector = choices.detector(photos_to_compute=bool(to_compute))
        self.labelers = choices.labelers()
        # labelers on the classifier's backbone: from its features (the others are sources)
        self.on_features = [FeaturesLabeler(lab) for lab in self.labelers if lab.backbone == self.model_name]
        self.text_image = choices.text_image()
        self.reader = choices.reader(photos_to_compute=bool(to_compute))
        self.detector_source = DetectorSource(self.detector) if self.detector is not None else None
        self.sources: list[Source] = [
            source
            for source in (
                self.detector_source,
                TextImageSource(self.text_image) if self.text_image is not None else None,
                TextSource(self.reader) if self.reader is not None else None,
                *self._labeler_sources(photos_to_compute=bool(to_compute)),
                SceneSource(),
                *self.options.sources,
            )
            if source is not None
        ]
        if to_compute:
            self._compute(to_compute, on_disk)
        self._catch_up()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _failed(self, path: str, reason: str) -> None:
        """A photo that could not be read: reported now (a long run shows it as it happens) and listed
        in the report."""
        self.report.failed.append((path, reason))
        log.warning("%s: %s", path, reason)

    def _skipped(self, error: ImageError) -> None:
        self._failed(error.path, error.reason)

    def _apply_moves_and_deletions(self, on_disk: dict[str, Stat]) -> list[str]:
        """Step 2 of the module docstring; returns the relative paths that need computing."""
        stored = self.store.photo_states()
        plan = plan_changes(stored, on_disk, self._hash_files(paths_to_hash(stored, on_disk)))
        if plan.writes:
            with self.store.transaction():
                seq = self.store.next_seq()
                for old, path in plan.moves:
                    self.store.move_photo(stored[old].id, path, *on_disk[path])
                for path in plan.touched:
                    self.store.touch_photo(stored[path].id, *on_disk[path])
                for source, path in plan.copies:
                    self.store.copy_photo(stored[source].id, path, *on_disk[path], seq)
                self.store.delete_photos(plan.deleted)
        report = self.report
        report.unchanged, report.still_failed = plan.unchanged, plan.still_failed
        report.moved, report.copied = len(plan.moves), len(plan.copies)
        report.touched, report.deleted = len(plan.touched), len(plan.deleted)
        report.added, report.updated = plan.added, plan.updated
        return plan.compute

    def _hash_files(self, paths: list[str]) -> dict[str, str]:
        def one(path: str) -> tuple[str, str | None]:
            try:
                return path, sha256_file(str(self.root / path))
            except OSError:
                return path, None  # unreadable: the compute step records why

        with ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 2))) as pool:
            return {p: h for p, h in pool.map(one, paths) if h}

    # ------------------------------------------------------------------------ step 3: new and changed
    def _compute(self, paths: list[str], on_disk: dict[str, Stat]) -> None:
        model = self.model()
        if self.batch is not None:
            paths = self._from_batch(paths)
            if not paths:
                return
        decode = photo_decoder(model.preprocessing, self.sources)
        outputs = model.iter_outputs(
            (self.root / p for p in paths),
            progress=self.options.progress,
            total=len(paths),
            desc="index",
            decode=decode,
            also=self._in_lanes,  # in the classifier's lane, on the same decoded batch
        )
        pending: list[tuple[Any, Any, Any]] = []
        for result in outputs:
            pending.append(result)
            if len(pending) >= model.batch_size:
                self._write_batch(pending, on_disk)
                pending = []
        if pending:
            self._write_batch(pending, on_disk)

    def _write_batch(self, results: list[tuple[Any, Any, Any]], on_disk: dict[str, Stat]) -> None:
        model = self.model()
        ok = [(item, feats, logits) for item, feats, logits in results if feats is not None]
        features = np.stack([f for _, f, _ in ok]) if ok and self.on_features else None
        labels = [lab.label(features) for lab in self.on_features] if features is not None else []
        self._compute_sources([item.info for item, _, _ in ok], concurrent=False)
        concepts = self.vocab().imagenet if len(model.categories) == 1000 else None
        now = time.time()
        with self.store.transaction():
            seq = self.store.next_seq()
            for item, _, _ in results:
                if item.ok:
                    continue
                rel = Path(item.path).relative_to(self.root).as_posix()
                size, mtime_ns = on_disk.get(rel, (0, 0))
                failed = PhotoRecord(
                    rel, size, mtime_ns, None, FAILED, item.error, PhotoMetadata(), None, now
                )
                self.store.upsert_photo(failed)
                self._failed(item.path, item.error or "unreadable")
            for row, (item, features, logits) in enumerate(ok):
                info: Decoded = item.info
                rel = Path(item.path).relative_to(self.root).as_posix()
                photo_id = self.store.upsert_photo(
                    PhotoRecord(
                        rel,
                        info.size,
                        info.mtime_ns,
                        info.sha256,
                        OK,
                        None,
                        info.metadata,
                        None,  # the detector's source says it has looked
                        now,
                    )
                )
                probabilities = softmax(logits)
                best = np.argsort(-probabilities, kind="stable")[:LABELS_PER_PHOTO]
                self.store.add_class_labels(
                    photo_id,
                    model.name,
                    [
                        (model.categories[i], concepts[i] if concepts else None, float(probabilities[i]))
                        for i in best
                    ],
                )
                for labeler, answers in zip(self.on_features, labels, strict=True):
                    labeler.write(self.store, photo_id, seq, answers[row])
                for source in self.sources:
                    if source.key in info.found:
                        source.write(self.store, photo_id, seq, info.found[source.key])
                self.store.put_vector(photo_id, FEATURES, seq, features)
                self.store.put_vector(photo_id, PROBS, seq, probabilities)

    def _in_lanes(self, batch: Batch) -> None:
        """The concurrent sources' results for a decoded batch, computed in its compute lane after the
        classifier (`iter_computed`'s `also`)."""
        self._compute_sources([item.info for item in batch.ok_items], concurrent=True)

    def _compute_sources(self, infos: Sequence[Decoded], concurrent: bool) -> None:
        """The results of the sources that are (or are not) `concurrent` for decoded photos, left on
        their `Decoded.found`. The others run here, in the thread that writes, one batch at a time
        while the lanes decode and classify the next ones. A photo that has a source's result already
        (from a batch job), or no input for it, is not computed again."""
        for source in self.sources:
            key = source.key
            if source.concurrent != concurrent:
                continue
            todo = [info for info in infos if key not in info.found and key in info.prepared]
            if todo:
                computed = source.compute([info.prepared.pop(key) for info in todo])
                for info, result in zip(todo, computed, strict=True):
                    info.found[key] = result

    def _from_batch(self, paths: list[str]) -> list[str]:
        """Write the photos a batch job already ran (matched by content hash) from its results, without
        decoding them; returns the paths left to compute here. The photos are hashed first, then the
        jobs are read shard by shard for those hashes only (`BatchResults`)."""
        assert self.batch is not None
        model = self.model()
        own = self.detector_source
        unread: list[tuple[int, str]] = []
        wanted: dict[str, list[tuple[int, str, Decoded]]] = {}
        pending: list[tuple[Item, np.ndarray]] = []

        def flush() -> None:
            features = np.stack([f for _, f in pending])
            logits = model.logits_from_features(features)
            self._write_batch([(item, features[i], logits[i]) for i, (item, _) in enumerate(pending)], {})
            pending.clear()

        for index, rel in enumerate(paths):
            try:
                data, size, mtime_ns = read_file(str(self.root / rel))
            except ImageError:
                unread.append((index, rel))  # the normal path records why it cannot be read
                continue
            digest = sha256_bytes(data)
            wanted.setdefault(digest, []).append(
                (index, rel, Decoded(size, mtime_ns, digest, read_exif(data)))
            )
        found: dict[str, list[Detection]] = {}
        if own is not None and self.batch.detector == own.detector.name:
            found = self.batch.detections_for(set(wanted))
        for digest, vector in self.batch.vectors_for(set(wanted)):
            for index, rel, info in wanted.pop(digest):
                if own is not None and digest in found:
                    info.found[own.key] = found[digest]
                pending.append((Item(str(self.root / rel), index, info=info), vector))
            if len(pending) >= 256:
                flush()
        if pending:
            flush()
        left = unread + [(index, rel) for entries in wanted.values() for index, rel, _ in entries]
        rest = [rel for _, rel in sorted(left)]
        taken = len(paths) - len(rest)
        if taken:
            self.report.annotated["taken from batch results"] = taken
        return rest

    # ------------------------------------------------------------ step 4: catch up older photos
    def _catch_up(self) -> None:
        missing_probs = self.store.photos_without_vector(PROBS)
        if missing_probs:  # indexed before the index kept all of the classifier's probabilities
            self.report.annotated["classified again"] = self._classify_again(missing_probs)
        for labeler in self.on_features:  # from the classifier's stored features
            missing = labeler.owed(self.store)
            if missing:
                self.report.annotated[labeler.key] = self._label_from_features(labeler, missing)
        owed = {source.key: source.owed(self.store) for source in self.sources}
        if any(owed.values()):
            self._pixel_pass(owed)

    def _classify_again(self, photos: list[tuple[int, str]]) -> int:
        """The classifier's probabilities for photos that have none stored, from their stored features
        through the classifier's head (no photo is decoded again)."""
        model, done = self.model(), 0
        for chunk in chunks(photos, 256):
            rows = self.store.vectors_of(FEATURES, [i for i, _ in chunk])
            if not rows:
                continue
            logits = model.logits_from_features(np.stack([v for _, v in rows]))
            with self.store.transaction():
                seq = self.store.next_seq()
                for (photo_id, _), row in zip(rows, logits, strict=True):
                    self.store.put_vector(photo_id, PROBS, seq, softmax(row))
            done += len(rows)
        return done

    def _label_from_features(self, labeler: FeaturesLabeler, photos: list[tuple[int, str]]) -> int:
        """Label photos from their stored features: no image is decoded again."""
        done = 0
        for chunk in chunks(photos, 256):
            rows = self.store.vectors_of(FEATURES, [i for i, _ in chunk])
            if not rows:
                continue
            answers = labeler.label(np.stack([v for _, v in rows]))
            with self.store.transaction():
                seq = self.store.next_seq()  # readers that cache label names see the change
                for (photo_id, _), answer in zip(rows, answers, strict=True):
                    labeler.write(self.store, photo_id, seq, answer)
            done += len(rows)
        return done

    def _pixel_pass(self, owed: dict[str, list[tuple[int, str]]]) -> None:
        """Decode the older photos that sources owe once, for all of those sources, and write what
        they find (a source new to the library, or one that changed, catches up here)."""
        active = [source for source in self.sources if owed.get(source.key)]
        photos = sorted({photo for source in active for photo in owed[source.key]})
        by_path = {str(self.root / p): i for i, p in photos}
        owing: dict[str, set[str]] = {path: set() for path in by_path}  # path -> keys of its sources
        for source in active:
            for _, rel in owed[source.key]:
                owing[str(self.root / rel)].add(source.key)
        decode = photo_decoder(None, active, needs=owing.__getitem__)
        done = {source.key: 0 for source in active}
        batches = iter_computed(
            list(by_path),
            decode,
            lambda pixels: None,  # no classifier here: the sources run in `also`
            batch_size=self.options.run_options.batch_size or 16,
            streams=self._catch_up_streams(),
            also=self._in_lanes,
        )
        with progress_bar(total=len(photos), desc="catch up", enabled=self.options.progress) as bar:
            for batch, _ in batches:
                self._compute_sources([item.info for item in batch.ok_items], concurrent=False)
                with self.store.transaction():
                    seq = self.store.next_seq()
                    for item in batch.items:
                        if not item.ok:
                            log.warning("%s: %s", item.path, item.error)
                            continue
                        for source in active:
                            if source.key in item.info.found:
                                source.write(self.store, by_path[item.path], seq, item.info.found[source.key])
                                done[source.key] += 1
                bar.update(len(batch.items))
        for key, count in done.items():
            if count:
                self.report.annotated[key] = count

    def _catch_up_streams(self) -> int:
        """Compute lanes for the catch-up pass (--streams, else two where there are two CPUs): one lane
        decodes its batch while another computes, and concurrent sources compute in both."""
        return self.options.run_options.streams or min(2, available_cpus())
