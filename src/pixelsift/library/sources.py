"""The evidence sources the indexer runs on decoded photos, besides the classifier that drives a run.

A source (`Source`) says what it needs of a photo's one decode (`min_size`), derives its input from the
decoded photo in the decode threads (`prepare`), computes a batch of those inputs at once (`compute`),
writes one photo's result (`write`, inside the indexer's transaction) and knows which photos it still
owes (`owed`, asked of the store). The indexer treats every source alike: new and changed photos get
every source in the same pass as the classifier; older photos a source owes (it is new to the library,
or it changed) are decoded once for all the sources that owe them (catch-up). Adding a kind of
evidence is one class here and its store methods; the indexer does not change.

The sources: `DetectorSource` (objects, or objects with their areas from an instance segmenter),
`TextImageSource` (vectors for free-text search), `TextSource` (the text read in photos).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pixelsift.library.rows import CLIP, Detection, TextRow
from pixelsift.library.store import LibraryStore
from pixelsift.library.textmatch import normalize

DETECTOR_MIN_SIZE = 640  # decode JPEGs at least this large when a detector will look at them
TEXT_MIN_SIZE = 960  # ... and this large when the text reader will (its detector looks at 960 pixels)


@runtime_checkable
class Source(Protocol):
    """One kind of evidence the index keeps per photo (see the module docstring)."""

    @property
    def key(self) -> str:
        """What it is, for the run's report: "searched for objects (ssd_mobilenet_v2_coco)"."""
        ...

    @property
    def min_size(self) -> int:
        """The shorter side (pixels) it needs the photo decoded at, at least; 0: any size."""
        ...

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        """(id, relative path) of the readable photos it has not done yet."""
        ...

    def prepare(self, image: Any) -> Any:
        """Its input from one decoded photo (an upright RGB `PIL.Image`, `info["full_size"]` its size
        before draft decoding); called in the decode threads."""
        ...

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        """The results of a batch of prepared inputs, one per input, in order."""
        ...

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        """Store one photo's result (inside the indexer's transaction); the photo is then done."""
        ...


class DetectorSource:
    """The objects a detector (or instance segmenter) finds: boxes in full-resolution pixels, and from a
    segmenter each object's own area (a fraction of the photo: the same at any scale)."""

    min_size = DETECTOR_MIN_SIZE

    def __init__(self, detector: Any):
        self.detector = detector
        self.key = f"searched for objects ({detector.name})"

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_not_seen_by(self.detector.name)

    def prepare(self, image: Any) -> Any:
        return image

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        found = self.detector.detect_images(list(prepared))  # batched through the network
        return [self._rows(image, result) for image, result in zip(prepared, found, strict=True)]

    def _rows(self, image: Any, result: Any) -> list[Detection]:
        full_width = image.info.get("full_size", image.size)[0]
        scale = full_width / image.width if image.width else 1.0
        boxes = np.asarray(result.boxes, dtype=np.float64).reshape(-1, 4) * scale
        areas = result.areas()
        return [
            Detection(
                str(name),
                float(score),
                (float(x1), float(y1), float(x2), float(y2)),
                None if areas is None else float(areas[i]),
            )
            for i, (name, score, (x1, y1, x2, y2)) in enumerate(
                zip(result.class_names, np.asarray(result.scores), boxes, strict=True)
            )
        ]

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.set_detections(photo_id, self.detector.name, result)


class TextImageSource:
    """A text-image model's vector of each photo (CLIP), for free-text search."""

    def __init__(self, model: Any):
        self.model = model
        self.key = f"encoded for free text ({model.name})"
        self.min_size = int(model.preprocessing.resize)

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_without_vector(CLIP)

    def prepare(self, image: Any) -> Any:
        return self.model.preprocessing(image)

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        return list(self.model.encode_pixels(np.stack(list(prepared))))

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.put_vector(photo_id, CLIP, seq, result)


class TextSource:
    """The lines of text read in each photo (`index --ocr`), as the store keeps them."""

    key = "read for text"
    min_size = TEXT_MIN_SIZE

    def __init__(self, reader: Any):
        self.reader = reader

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_not_read_by(self.reader.name)

    def prepare(self, image: Any) -> Any:
        return image

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        return [self._read(image) for image in prepared]

    def _read(self, image: Any) -> list[TextRow]:
        full_height = image.info.get("full_size", image.size)[1] or 1
        return [
            TextRow(
                line.text,
                normalize(line.text),
                line.score,
                line.box,
                line.height / full_height,
                tuple((w.text, *w.box) for w in line.words),
            )
            for line in self.reader.read_image(image)
        ]

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.set_text(photo_id, self.reader.name, result)
