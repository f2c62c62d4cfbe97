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
from pixelsift.errors import PixelsiftError, UsageError
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
    name = path.name.split(".")[0] or path.name
    return Labeler(name=name, path=str(path.resolve()), sha256=digest, model=model)


def choose_detector(name: str | None, run_options: RunOptions, agnostic_nms: bool = False) -> Any:
    """The detector to use: `auto` = pixelsift's default when detection is available, `none` = no
    detection, anything else = that detector model (an error when it cannot be loaded)."""
    if name is None or name == NONE:
        return None
    # imported here: detection code (and Pillow's drawing) costs ~30 ms of start-up that a library
    # with no new photos does not need
    from pixelsift import detect

    if name == AUTO:
        default = detect.default_detector_name()
        if default is None:
            log.info("no object detector available (see `pixelsift models --task detect`); indexing without")
            return None
        try:
            return detect.load_detector(default, run_options, agnostic_nms=agnostic_nms)
        except (PixelsiftError, ImportError) as exc:
            log.info("default detector %s not usable (%s); indexing without", default, exc)
            return None
    return detect.load_detector(name, run_options, agnostic_nms=agnostic_nms)
