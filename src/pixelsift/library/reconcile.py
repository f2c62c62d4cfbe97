"""What one index run uses: the models and sources the library remembers (`LibrarySettings`),
reconciled with what the command line asks for this time.

Each choice given on the command line is saved for later runs; a choice that is not given is last
time's. A model that nothing needs this run (an unchanged library, every photo already seen by it) is
not loaded. `Reconciler` is used by `Indexer.run`, once per run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pixelsift.errors import DetectorUnavailableError, PixelsiftError, UsageError
from pixelsift.library.labelers import AUTO, NONE, Labeler, choose_detector, load_labeler
from pixelsift.library.rows import CLIP, LabelerEntry
from pixelsift.library.runs import IndexOptions
from pixelsift.library.store import LibraryStore
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_model_spec
from pixelsift.runtime.text_image import load_text_image_model

log = logging.getLogger("pixelsift")


class Reconciler:
    """The run's choices, from the store's settings and the run's `IndexOptions`."""

    def __init__(self, store: LibraryStore, options: IndexOptions):
        self.store = store
        self.options = options

    def model_name(self) -> str:
        stored = self.store.settings().model
        wanted = self.options.model or stored or DEFAULT_CLASSIFIER
        if self.options.model:  # the registry's spelling ("VGG16" is vgg16), as stored
            wanted = get_model_spec(wanted).name
        if stored and wanted != stored:
            raise UsageError(
                f"this index was built with model {stored!r}; its vectors cannot be mixed with {wanted!r}'s. "
                f"Use --model {stored}, or index into a new file with --db"
            )
        return wanted

    def detector(self, photos_to_compute: bool) -> Any:
        """This run's detector: the one asked for (and remembered), else the one remembered, else auto.

        A detector that is not asked for on this command line is loaded only when there is work for it:
        new or changed photos, or older photos it has not looked at. An unchanged library loads none.
        """
        choice = self.options.detector or self.store.settings().detector or AUTO
        if self.options.detector:
            # asked for on this command line: an error stops the run
            detector = choose_detector(choice, self.options.run_options, self.options.agnostic_nms)
            with self.store.transaction():
                self.store.save_settings(detector=choice)
            return detector
        if choice == NONE:
            return None
        if not photos_to_compute:
            name = choice
            if choice == AUTO:
                from pixelsift import detect  # see labelers.choose_detector

                name = detect.default_detector_name() or NONE
            if name == NONE or not self.store.photos_not_seen_by(name):
                return None  # every photo has been seen by this detector (or there is none)
        try:
            return choose_detector(choice, self.options.run_options, self.options.agnostic_nms)
        except DetectorUnavailableError:
            raise
        except (PixelsiftError, ImportError) as exc:
            raise DetectorUnavailableError(
                f"the detector this library uses ({choice}) cannot load: {exc}. Fix it (`pixelsift doctor` "
                "names how), choose another with --detector MODEL, or index without: --detector none"
            ) from None

    def labelers(self) -> list[Labeler]:
        remembered = self.store.settings().labelers
        paths = [entry.path for entry in remembered]
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
        previous = {entry.name: entry for entry in remembered}
        with self.store.transaction():
            for labeler in labelers:
                old = previous.get(labeler.name)
                if old and old.sha256 != labeler.sha256:  # retrained: its old labels are stale
                    self.store.delete_custom_labels(labeler.name)
            entries = dict(previous)
            for labeler in labelers:
                entries[labeler.name] = LabelerEntry(labeler.name, labeler.path, labeler.sha256)
            self.store.save_settings(labelers=tuple(entries.values()))
        return labelers

    def text_image(self) -> Any:
        choice = self.options.text_image or self.store.settings().text_image or AUTO
        model = load_text_image_model(choice, self.options.run_options)
        if self.options.text_image:
            with self.store.transaction():
                self.store.save_settings(text_image=self.options.text_image)
        if model is not None:
            stored = self.store.settings().text_image_model
            if stored and stored != model.name:
                with self.store.transaction():  # another text-image space: the old vectors mean nothing to it
                    self.store.delete_space(CLIP)
            with self.store.transaction():
                self.store.save_settings(text_image_model=model.name)
        return model

    def reader(self, photos_to_compute: bool) -> Any:
        """The text reader when the library reads text (`--ocr`, remembered; `--no-ocr` turns it off),
        loaded only when some photo needs reading. A reader that cannot load here leaves the photos
        unread (a warning says why); the next run that can reads them."""
        asked = self.options.ocr
        if asked is not None:
            with self.store.transaction():
                self.store.save_settings(ocr="on" if asked else "off")
        if not (asked if asked is not None else self.store.settings().ocr == "on"):
            return None
        from pixelsift.ocr.reader import TextReader  # rapidocr and onnxruntime load with the reader

        if not photos_to_compute and not self.store.photos_not_read_by(TextReader.name):
            return None
        try:
            return TextReader(self.options.run_options)
        except PixelsiftError as exc:
            if asked:
                raise
            log.warning("the text in photos is not read this time: %s", exc)
            return None
