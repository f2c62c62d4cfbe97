"""Bring a photo index up to date with its folder: only new and changed photos are computed.

One run:
1. settles what it uses (`reconcile.Reconciler`: the models and sources the library remembers, and
   what this command line asks) and walks the folder, stating every photo (no file is opened yet);
2. compares with the index: same path, size and mtime = unchanged (failed photos included, so they
   are not retried until they change); a photo whose content hash matches a vanished entry was moved
   or renamed and keeps its entry, id and results; a copy of an indexed photo copies its results;
   entries whose file is gone are dropped. All of that is one transaction;
3. what the stored features give without decoding: labels of a labeler on the classifier's backbone,
   and the probabilities an old index lacks;
4. one pass over the photos that need evidence: new and changed photos get every source, older ones
   the sources that owe them (a source new to the library, or one that changed). Each file is read and
   decoded once (`decoding.photo_decoder`: hash, EXIF, every source's input), every source
   (`sources`: the classifier, the detector, the labelers, the scene regions, ...) computes on the
   same batch in the compute lanes, and every batch is committed in its own transaction, a new photo's
   row with its results. With --from-batch, the results of `pixelsift batch` jobs (matched by content
   hash) are taken first instead, and the pass computes what the jobs did not.

A run killed at any point leaves every committed batch in place; the next run does the rest.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
from pixelsift.library.runs import IndexOptions, IndexReport
from pixelsift.library.sources import (
    ClassifierSource,
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

log = logging.getLogger("pixelsift")


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
        self.scene = SceneSource()
        self.sources: list[Source] = [
            source
            for source in (
                self.detector_source,
                TextImageSource(self.text_image) if self.text_image is not None else None,
                TextSource(self.reader) if self.reader is not None else None,
                *self._labeler_sources(photos_to_compute=bool(to_compute)),
                self.scene,
                *self.options.sources,
            )
            if source is not None
        ]
        self.classifier: ClassifierSource | None = None
        if to_compute or self.store.photos_without_vector(FEATURES):  # loaded only when photos need it
            model = self.model()
            concepts = self.vocab().imagenet if len(model.categories) == 1000 else None
            self.classifier = ClassifierSource(model, concepts, self.on_features)
            self.sources.insert(0, self.classifier)
        if to_compute and self.batch is not None:
            to_compute = self._from_batch(to_compute)
        self._from_stored_features()
        self._pixel_pass(to_compute, on_disk)
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

    # ---------------------------------------------------------------- step 4: one pass of sources
    def _pixel_pass(self, new: list[str], on_disk: dict[str, Stat]) -> None:
        """Decode each photo that needs a source once, for all the sources it needs, compute them in the
        compute lanes and write them, a transaction per batch: new and changed photos (`new`) get a row
        and every source; older photos get the sources that owe them (a source new to the library, or
        one that changed, catches up here)."""
        everything = {source.key for source in self.sources}
        ids: dict[str, int | None] = {str(self.root / rel): None for rel in new}
        needs: dict[str, set[str]] = dict.fromkeys(ids, everything)
        older: dict[str, set[str]] = {}
        for source in self.sources:
            for photo_id, rel in source.owed(self.store):
                path = str(self.root / rel)
                if path not in needs:
                    ids[path] = photo_id
                    older.setdefault(path, set()).add(source.key)
        needs.update(sorted(older.items(), key=lambda entry: ids[entry[0]] or 0))
        if not needs:
            return
        active = [source for source in self.sources if any(source.key in keys for keys in needs.values())]
        classifying = self.classifier is not None and self.classifier in active
        runner = self.model().runner if classifying else None
        batches = iter_computed(
            list(needs),
            photo_decoder(active, needs=needs.__getitem__),
            lambda pixels: None,  # every source, the classifier's included, computes in `also`
            batch_size=self.model().batch_size if classifying else self.options.run_options.batch_size or 16,
            streams=runner.streams if runner is not None else self._catch_up_streams(),
            workers=runner.workers if runner is not None else 0,
            also=self._in_lanes,
        )
        caught_up = dict.fromkeys(everything, 0)
        desc = "index" if new else "catch up"  # the page's step: "catching up older photos"
        with progress_bar(total=len(needs), desc=desc, enabled=self.options.progress) as bar:
            for batch, _ in batches:
                self._compute_sources([item.info for item in batch.ok_items], concurrent=False)
                self._write(batch.items, ids, on_disk, caught_up)
                bar.update(len(batch.items))
        for key, count in caught_up.items():
            if count:
                self.report.annotated[key] = count

    def _write(
        self,
        items: Sequence[Item],
        ids: dict[str, int | None],
        on_disk: dict[str, Stat],
        caught_up: dict[str, int],
    ) -> None:
        """One transaction: each item's sources' results. A new or changed photo (no id in `ids`) gets
        its row first (a photo that cannot be read is remembered as failed); `caught_up` counts the
        older photos' results per source."""
        now = time.time()
        with self.store.transaction():
            seq = self.store.next_seq()
            for item in items:
                photo_id = ids.get(item.path)
                rel = Path(item.path).relative_to(self.root).as_posix()
                if not item.ok:
                    if photo_id is None:  # not retried until it changes
                        size, mtime_ns = on_disk.get(rel, (0, 0))
                        failed = PhotoRecord(
                            rel, size, mtime_ns, None, FAILED, item.error, PhotoMetadata(), None, now
                        )
                        self.store.upsert_photo(failed)
                        self._failed(item.path, item.error or "unreadable")
                    else:
                        log.warning("%s: %s", item.path, item.error)
                    continue
                info: Decoded = item.info
                older = photo_id is not None
                if photo_id is None:
                    photo_id = self.store.upsert_photo(
                        # the detector's column: its source says it has looked
                        PhotoRecord(
                            rel, info.size, info.mtime_ns, info.sha256, OK, None, info.metadata, None, now
                        )
                    )
                for source in self.sources:
                    if source.key in info.found:
                        source.write(self.store, photo_id, seq, info.found[source.key])
                        if older:
                            caught_up[source.key] += 1

    def _in_lanes(self, batch: Batch) -> None:
        """The concurrent sources' results for a decoded batch, computed in its compute lane
        (`iter_computed`'s `also`)."""
        self._compute_sources([item.info for item in batch.ok_items], concurrent=True)

    def _compute_sources(self, infos: Sequence[Decoded], concurrent: bool) -> None:
        """The results of the sources that are (or are not) `concurrent` for decoded photos, left on
        their `Decoded.found`. The others run here, in the thread that writes, one batch at a time
        while the lanes decode and compute the next ones. A photo that has a source's result already
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
        decoding them: the classifier's answers from the job's features, its scene regions, and the
        job's detections when it ran this library's detector; returns the paths left to compute here.
        The photos are hashed first, then the jobs are read shard by shard for those hashes only
        (`BatchResults`). The sources a job does not cover catch up in the pass that follows."""
        assert self.batch is not None and self.classifier is not None
        classifier, own = self.classifier, self.detector_source
        unread: list[tuple[int, str]] = []
        wanted: dict[str, list[tuple[int, str, Decoded]]] = {}
        pending: list[tuple[Item, np.ndarray]] = []

        def flush() -> None:
            answers = classifier.from_features(np.stack([f for _, f in pending]))
            for (item, _), answer in zip(pending, answers, strict=True):
                item.info.found[classifier.key] = answer
            self._write([item for item, _ in pending], {}, {}, {})
            pending.clear()

        for index, rel in enumerate(paths):
            try:
                data, size, mtime_ns = read_file(str(self.root / rel))
            except ImageError:
                unread.append((index, rel))  # the pass records why it cannot be read
                continue
            digest = sha256_bytes(data)
            wanted.setdefault(digest, []).append(
                (index, rel, Decoded(size, mtime_ns, digest, read_exif(data)))
            )
        found: dict[str, list[Detection]] = {}
        if own is not None and self.batch.detector == own.detector.name:
            found = self.batch.detections_for(set(wanted))
        for digest, vector, regions in self.batch.features_for(set(wanted)):
            for index, rel, info in wanted.pop(digest):
                if own is not None and digest in found:
                    info.found[own.key] = found[digest]
                if regions is not None:
                    info.found[self.scene.key] = regions
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

    # ------------------------------------------------------------ step 3: from the stored features
    def _from_stored_features(self) -> None:
        """What older photos owe that their stored features give without decoding: the classifier's
        probabilities an old index lacks, and the labels of labelers on the classifier's backbone."""
        done = {"classified again": 0}  # photos indexed before the index kept all the probabilities
        missing_probs = self.store.photos_without_vector(PROBS)
        if missing_probs:
            done["classified again"] = self._classify_again(missing_probs)
        for labeler in self.on_features:
            missing = labeler.owed(self.store)
            if missing:
                done[labeler.key] = self._label_from_features(labeler, missing)
        # a photo without stored features is left to the pass, where the classifier's source does both
        self.report.annotated.update({key: n for key, n in done.items() if n})

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

    def _catch_up_streams(self) -> int:
        """Compute lanes for the catch-up pass (--streams, else two where there are two CPUs): one lane
        decodes its batch while another computes, and concurrent sources compute in both."""
        return self.options.run_options.streams or min(2, available_cpus())
