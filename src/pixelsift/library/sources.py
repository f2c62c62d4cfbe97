"""The evidence sources the indexer runs on decoded photos: the classifier and all the others alike.

A source (`Source`) says what it needs of a photo's one decode (`min_size`; `exact`: decoded at that
size exactly, as the classifier is), derives its input from the decoded photo in the decode threads
(`prepare`), computes a batch of those inputs at once (`compute`: in a compute lane on the decoded
batch, several batches at once with several streams; a source that is not `concurrent` computes in
the indexer's writing thread instead), writes one photo's result (`write`, inside the indexer's
transaction, after the indexer wrote a new photo's row) and knows which photos it still owes (`owed`,
asked of the store).

The indexer treats every source alike: new and changed photos get every source, older photos the
sources that owe them (a source new to the library, or one that changed), in one pass that decodes each
photo once for all of them. Adding a kind of evidence is one class here and its store methods; the
indexer does not change.

The sources: `ClassifierSource` (the library's classifier: classes, probabilities and features, and the
labels of the custom labelers on its backbone), `DetectorSource` (objects, or objects with their areas
from an instance segmenter), `TextImageSource` (vectors for free-text search), `TextSource` (the text
read in photos), `LabelerSource` (a custom labeler trained on another backbone than the library's
classifier; one trained on the classifier's own backbone is a `FeaturesLabeler`: it labels from the
classifier's features, without pixels, with the same answers and the same write), `SceneSource` (sky,
grass, trees and road).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pixelsift.core.arrays import l2_normalize, softmax
from pixelsift.features.ensemble import ensemble_members
from pixelsift.imaging import scene
from pixelsift.library.labelers import Labeler
from pixelsift.library.rows import CLIP, FEATURES, PROBS, Detection, TextRow
from pixelsift.library.store import LibraryStore
from pixelsift.library.textmatch import normalize

LABELS_PER_PHOTO = 5  # ImageNet classes kept per photo (usually > 90% of the probability mass)
DETECTOR_MIN_SIZE = 640  # decode JPEGs at least this large when a detector will look at them
CUSTOM_LABELS_PER_PHOTO = 3  # a custom labeler's best classes kept per photo
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

    @property
    def exact(self) -> bool:
        """Whether it gets the photo decoded at its own `min_size` exactly (a JPEG draft for that size,
        as `pixelsift classify` decodes it), even when another source needs more pixels; else it takes
        its input from the run's largest decode of the photo."""
        ...

    @property
    def concurrent(self) -> bool:
        """Whether `compute` may run in the compute lanes, several batches at once; else it runs in the
        indexer's writing thread, one batch at a time, while the lanes decode and classify ahead."""
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


@dataclass(frozen=True)
class Classified:
    """The classifier's answer for one photo: its raw features (the backbone's, as search and `similar`
    use them), all of its class probabilities, and the answers of the labelers on its backbone."""

    features: np.ndarray
    probabilities: np.ndarray
    labels: tuple[Any, ...] = ()


class ClassifierSource:
    """The library's classifier: each photo's best classes (with their WordNet concepts, for a 1000-class
    ImageNet model), all of its probabilities and its features, and the labels of the custom labelers
    on its backbone (`FeaturesLabeler`), from the same forward pass. It is decoded exactly as
    `pixelsift classify` decodes a photo (`exact`: a JPEG draft for its own size), so a photo scores
    the same in the index, in `classify` and in an upload."""

    concurrent = True  # the runner is safe to call from several lanes
    exact = True

    def __init__(
        self, model: Any, concepts: Sequence[str] | None = None, labelers: Sequence[FeaturesLabeler] = ()
    ):
        self.model = model
        self.key = f"classified ({model.name})"
        self.min_size = int(model.preprocessing.resize)
        self.concepts = concepts
        self.labelers = list(labelers)

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_without_vector(FEATURES)

    def prepare(self, image: Any) -> Any:
        return self.model.preprocessing.pixels(image)

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        features, logits = self.model.run(np.stack(list(prepared)))
        return self._answers(np.asarray(features, np.float32), np.asarray(logits))

    def from_features(self, features: np.ndarray) -> list[Classified]:
        """The answers for stored or imported raw features (a `pixelsift batch embed` job's), through the
        classifier's head: no photo is decoded."""
        return self._answers(features, self.model.logits_from_features(features))

    def _answers(self, features: np.ndarray, logits: np.ndarray) -> list[Classified]:
        labels = [labeler.label(features) for labeler in self.labelers]
        return [
            Classified(features[i], softmax(logits[i]), tuple(answers[i] for answers in labels))
            for i in range(len(features))
        ]

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        names, concepts = self.model.categories, self.concepts
        best = np.argsort(-result.probabilities, kind="stable")[:LABELS_PER_PHOTO]
        store.set_class_labels(
            photo_id,
            self.model.name,
            [(names[i], concepts[i] if concepts else None, float(result.probabilities[i])) for i in best],
        )
        for labeler, answer in zip(self.labelers, result.labels, strict=True):
            labeler.write(store, photo_id, seq, answer)
        store.put_vector(photo_id, FEATURES, seq, result.features)
        store.put_vector(photo_id, PROBS, seq, result.probabilities)


class DetectorSource:
    """The objects a detector (or instance segmenter) finds: boxes in full-resolution pixels, and from a
    segmenter each object's own area (a fraction of the photo: the same at any scale). The photo is
    resized for the network in the decode threads (`Detector.prepare_input`)."""

    exact = False

    def __init__(self, detector: Any):
        self.detector = detector
        self.key = f"searched for objects ({detector.name})"
        # the network's own input size where it has one (JPEGs draft-decode at it), else a safe size
        self.min_size = int(detector.decode_size or DETECTOR_MIN_SIZE)
        self.concurrent = bool(detector.concurrent)

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_not_seen_by(self.detector.name)

    def prepare(self, image: Any) -> Any:
        return self.detector.prepare_input(image)

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        found = self.detector.detect_prepared(list(prepared))  # batched through the network
        return [self._rows(result) for result in found]

    @staticmethod
    def _rows(result: Any) -> list[Detection]:
        areas = result.areas()
        return [
            Detection(
                str(name),
                float(score),
                (float(x1), float(y1), float(x2), float(y2)),
                None if areas is None else float(areas[i]),
            )
            for i, (name, score, (x1, y1, x2, y2)) in enumerate(
                zip(
                    result.class_names,
                    np.asarray(result.scores),
                    np.asarray(result.boxes, dtype=np.float64).reshape(-1, 4),
                    strict=True,
                )
            )
        ]

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.set_detections(photo_id, self.detector.name, result)


class TextImageSource:
    """A text-image model's vector of each photo (CLIP), for free-text search."""

    exact = False

    def __init__(self, model: Any):
        self.model = model
        self.key = f"encoded for free text ({model.name})"
        self.min_size = int(model.preprocessing.resize)
        self.concurrent = True  # a torch network, as the classifier

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
    concurrent = False  # the reader keeps its own thread plan, and RapidOCR's pipeline objects state
    exact = False

    def __init__(self, reader: Any):
        self.reader = reader

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_not_read_by(self.reader.name)

    def prepare(self, image: Any) -> Any:
        """The reader's pixels (made in the decoding threads) and the photo's full height."""
        return self.reader.pixels(image), image.info.get("full_size", image.size)[1] or 1

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        return [self._read(pixels, full_height) for pixels, full_height in prepared]

    def _read(self, pixels: tuple[Any, float], full_height: int) -> list[TextRow]:
        return [
            TextRow(
                line.text,
                normalize(line.text),
                line.score,
                line.box,
                line.height / full_height,
                tuple((w.text, *w.box) for w in line.words),
            )
            for line in self.reader.read_pixels(*pixels)
        ]

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.set_text(photo_id, self.reader.name, result)


class FeaturesLabeler:
    """A custom labeler (`pixelsift train`) on the library's classifier's own backbone: it labels from
    the classifier's features, those of the same forward pass for new photos and the stored ones when
    it catches up, so it decodes nothing (`Indexer` feeds it; it is not a pixel `Source`)."""

    def __init__(self, labeler: Labeler):
        self.labeler = labeler
        self.key = f"labelled by {labeler.name}"

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_without_labels_of(self.labeler.name)

    def label(self, features: np.ndarray) -> list[Any]:
        """Its answers (`labelers.Prediction`) for rows of the backbone's raw features."""
        return list(self.labeler.predict(features, CUSTOM_LABELS_PER_PHOTO))

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.set_custom_labels(photo_id, self.labeler.name, result.labels, result.unrecognised)


class LabelerSource(FeaturesLabeler):
    """A custom labeler whose backbone is not the library's classifier: a `Source` that computes its
    backbone's features from the photo's one decode (each member's, side by side and normalised, for
    an ensemble, as `pixelsift train` made them), then labels them as `FeaturesLabeler` does."""

    concurrent = True  # torch networks, as the classifier
    exact = False

    def __init__(self, labeler: Labeler, run_options: Any):
        from pixelsift.runtime.loaded import ImageModel  # imports torch: only when a labeler needs it

        super().__init__(labeler)
        members = ensemble_members(labeler.backbone)
        self.ensemble = members is not None
        self.models = [ImageModel.load(name, run_options) for name in members or [labeler.backbone]]
        self.min_size = max(int(model.preprocessing.resize) for model in self.models)

    def prepare(self, image: Any) -> Any:
        return [model.preprocessing.pixels(image) for model in self.models]

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        features = [
            np.asarray(model.run(np.stack([pixels[i] for pixels in prepared]))[0], np.float32)
            for i, model in enumerate(self.models)
        ]
        joined = np.concatenate([l2_normalize(f) for f in features], axis=1) if self.ensemble else features[0]
        return self.label(joined)


class SceneSource:
    """The scene regions of each photo (sky, grass, trees, road: `imaging.scene`), stored as labels of
    the source `scene.SOURCE`. About a millisecond of numpy on a 64-pixel copy: every library gets it."""

    key = "looked at the scene (sky, grass, trees, road)"
    min_size = scene.SIDE  # it looks at a 64-pixel copy: alone (catching up), JPEGs draft-decode small
    concurrent = True  # numpy and SciPy on small arrays, no state
    exact = False

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        return store.photos_without_labels_of(scene.SOURCE)

    def prepare(self, image: Any) -> Any:
        return scene.small_copy(image)

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        return [scene.scene_labels(rgb) for rgb in prepared]

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.set_custom_labels(photo_id, scene.SOURCE, result)
