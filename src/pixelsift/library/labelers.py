"""What else looks at each photo besides the classifier: an object detector and the user's labelers.

Both come from other parts of pixelsift (`pixelsift.detect`, `pixelsift.transfer`) and are optional:
a library indexes without them, and picks them up on a later run when they become available.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.hashing import sha256_file
from pixelsift.errors import DetectorUnavailableError, PixelsiftError, UsageError
from pixelsift.imaging import scene
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")

AUTO, NONE = "auto", "none"


@dataclass
class Prediction:
    """A labeler's answer for one photo: its best labels, or none and the photo's distance to the
    training photos when it does not recognise it."""

    labels: list[tuple[str, float]]
    unrecognised: float | None = None


@dataclass
class Labeler:
    """A classifier the user trained (`pixelsift train`), applied to every photo of the library."""

    name: str  # labels it gives are searchable under this source name
    path: str
    sha256: str
    model: Any = field(repr=False)  # pixelsift.transfer.TrainedModel

    @property
    def backbone(self) -> str:
        return str(self.model.backbone)

    @property
    def classes(self) -> list[str]:
        return list(self.model.classes)

    def predict(self, raw_features: np.ndarray, top: int = 3) -> list[Prediction]:
        """For each row of unnormalised backbone features, its `top` classes, best first; a photo
        unlike the model's training photos gets none (`Prediction.unrecognised` says how far it is)."""
        raw = np.asarray(raw_features, np.float32)
        proba = np.asarray(self.model.predict_proba_from_features(raw))
        gate = self.model.domain  # None: a model from before the gate labels every photo
        distances = gate.distances(raw) if gate is not None else np.zeros(len(raw))
        threshold = gate.threshold if gate is not None else None
        classes = self.classes
        out = []
        for row, distance in zip(proba, distances, strict=True):
            if threshold is not None and distance > threshold:
                out.append(Prediction([], float(distance)))
                continue
            best = np.argsort(-row, kind="stable")[: min(top, len(classes))]
            out.append(Prediction([(classes[i], float(row[i])) for i in best]))
        return out


def load_labeler(path: str | Path) -> Labeler:
    """Load a model saved by `pixelsift train` (safe formats only; see pixelsift.transfer)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"--labeler {path}: no such file (give a model saved by `pixelsift train`)")
    name = path.name.split(".")[0] or path.name
    if name.lower() == scene.SOURCE:
        raise UsageError(
            f"--labeler {path}: the name {name!r} is taken by pixelsift's own scene regions (sky, grass, "
            "trees, road); rename the file (its labels are searched under the new name)"
        )
    # imported here, like detection below: an unchanged re-index loads neither (bench_library reindex)
    from pixelsift.transfer import trained

    model = trained.load_trained(path)
    if model.backbone_modified:
        raise UsageError(
            f"--labeler {path}: this model fine-tuned layers of {model.backbone}, so the library's stored "
            "features do not fit it; label with a model trained on features (pixelsift train, or "
            "--finetune with --layers 0)"
        )
    digest = sha256_file(path)
    return Labeler(name=name, path=str(path.resolve()), sha256=digest, model=model)


NO_DETECTION = (
    "no object detector is installed: indexing without object detection (searches for objects and "
    "people rest on the classifier alone); pip install 'pixelsift[detect-offline]' adds one that works "
    "offline, or say --detector none to index without one on purpose"
)


def choose_detector(name: str | None, run_options: RunOptions, agnostic_nms: bool = False) -> Any:
    """The detector to use: `auto` = the best detector that loads here (a note when the best one
    cannot, and another is taken), `none` = no detection, anything else = that detector model.

    A detector that is installed but cannot load is an error (`DetectorUnavailableError`, exit 1)
    unless another one loads; with no detector installed at all the library is indexed without one,
    with a warning (and `index --stats` and the search notes say so afterwards)."""
    if name is None or name == NONE:
        return None
    # imported here: detection code (and Pillow's drawing) costs ~30 ms of start-up that a library
    # with no new photos does not need
    from pixelsift import detect
    from pixelsift.detect.api import detector_readiness

    if name != AUTO:
        return detect.load_detector(name, run_options, agnostic_nms=agnostic_nms)
    ready, broken = detector_readiness()
    failures = [f"{detector}: {why}" for detector, why in broken.items()]
    for spec in ready:
        try:
            detector = detect.load_detector(spec.name, run_options, agnostic_nms=agnostic_nms)
        except (PixelsiftError, ImportError) as exc:
            failures.append(f"{spec.name}: {exc}")
            continue
        if failures:
            log.warning("%s; indexing with %s instead", "; ".join(failures), spec.name)
        return detector
    if failures:
        raise DetectorUnavailableError(
            "no object detector can run here (" + "; ".join(failures) + "). Fix it (`pixelsift doctor` "
            "names how), name another with --detector MODEL, or index without detection: --detector none"
        )
    log.warning(NO_DETECTION)
    return None
