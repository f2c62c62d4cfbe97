"""ultralytics YOLO records (YOLOv8, YOLO11, YOLO26, and the -seg instance segmenters): architectures,
COCO weights, safe checkpoint reading.

ultralytics (AGPL-3.0, the optional extra `pixelsift[yolo]`) supplies the network definitions and the
official COCO weights; `pixelsift.detect.backends.yolo` runs them.

Weights: `pixelsift models fetch yolov8n` downloads ultralytics' official file from its GitHub
release with ultralytics' own downloader. ultralytics publishes no hashes, and its `.pt` files are
pickles, so pixelsift never unpickles them freely: they are read with `torch.load(weights_only=True)`
against ultralytics' allow-list of its own model classes (`torch_safe_load(..., safe_only=True)`),
and anything outside that list is refused. safetensors files and plain state_dicts that fit the
architecture are accepted too (`pixelsift models add yolov8n FILE`).
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.boxes import nms
from pixelsift.core.optional import optional_import
from pixelsift.errors import WeightsInvalidError
from pixelsift.models.categories import coco80
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import DetectorSpec, SegmenterSpec, WeightsFile
from pixelsift.models.registry import register
from pixelsift.models.weights import is_safetensors, read_state_dict

RELEASE_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
LICENCE = "AGPL-3.0 (ultralytics code and weights)"
DEFAULT_IMGSZ = 640
# What pixelsift's engines (`--engine auto`, onnxruntime, openvino) feed a YOLO network: a square
# letterboxed photo as uint8, scaled to [0, 1] inside the graph (no mean or std). The letterbox itself
# is the detector's (`detect.backends.yolo.letterbox`); "squash" only shapes the tuner's check photos.
YOLO_PREPROCESSING = Preprocessing(
    resize=DEFAULT_IMGSZ, crop=DEFAULT_IMGSZ, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), fit="squash"
)
ENGINE_CONF, ENGINE_IOU, ENGINE_MAX_DET = 0.25, 0.45, 300  # the detections the tuner compares
MAX_NMS = 30000  # candidate boxes NMS looks at, as ultralytics

# name -> (COCO val2017 box mAP50-95, parameters in millions), from ultralytics' published tables.
VARIANTS: dict[str, tuple[float, float]] = {
    "yolov8n": (37.3, 3.2),
    "yolov8s": (44.9, 11.2),
    "yolov8m": (50.2, 25.9),
    "yolov8l": (52.9, 43.7),
    "yolov8x": (53.9, 68.2),
    "yolo11n": (39.5, 2.6),
    "yolo11s": (47.0, 9.4),
    "yolo11m": (51.5, 20.1),
    "yolo11l": (53.4, 25.3),
    "yolo11x": (54.7, 56.9),
    # YOLO26 (January 2026): ultralytics' newest family; pixelsift runs its one-to-many head with NMS,
    # as for the others (its end-to-end head is trained to need none)
    "yolo26n": (40.9, 2.4),
    "yolo26s": (48.6, 9.5),
    "yolo26m": (53.1, 20.4),
    "yolo26l": (55.0, 24.8),
    "yolo26x": (57.5, 55.7),
}
# name -> (COCO val2017 box mAP50-95, mask mAP50-95, parameters in millions), ultralytics' tables.
SEG_VARIANTS: dict[str, tuple[float, float, float]] = {
    "yolov8n-seg": (36.7, 30.5, 3.4),
    "yolov8s-seg": (44.6, 36.8, 11.8),
    "yolov8m-seg": (49.9, 40.8, 27.3),
    "yolov8l-seg": (52.3, 42.6, 46.0),
    "yolov8x-seg": (53.4, 43.4, 71.8),
    "yolo11n-seg": (38.9, 32.0, 2.9),
    "yolo11s-seg": (46.6, 37.8, 10.1),
    "yolo11m-seg": (51.5, 41.5, 22.4),
    "yolo11l-seg": (53.4, 42.9, 27.6),
    "yolo11x-seg": (54.7, 43.8, 62.1),
}

# pixelsift uses ultralytics' model code only: its online features (version checks, hub, analytics,
# font downloads) and auto-installs are never needed, and its log goes to stdout, where pixelsift
# writes data. Set before ultralytics is first imported; a value the user set wins.
QUIET_ENV = {"YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False", "YOLO_AUTOINSTALL": "False"}


def import_ultralytics() -> Any:
    """ultralytics, imported offline and quiet; `MissingDependencyError` when it is not installed."""
    if "ultralytics" not in sys.modules:
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
    ultralytics = optional_import("ultralytics", "ultralytics", "yolo", "YOLO detection")
    for handler in logging.getLogger("ultralytics").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    _restore_pillow_open()
    return ultralytics


def _restore_pillow_open() -> None:
    """Undo ultralytics' replacement of `PIL.Image.open`.

    On import, ultralytics swaps in a wrapper that, whenever Pillow cannot identify a file, tries to
    pip-install `pi-heif` and then fails with ModuleNotFoundError: an unreadable photo would crash a
    pixelsift batch (or start a download) instead of being reported and skipped. pixelsift opens
    HEIC itself when pillow-heif is installed.
    """
    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    original = getattr(patches, "_image_open", None)
    if original is not None and getattr(Image.open, "__module__", None) == "ultralytics.utils.patches":
        Image.open = original


def build_network(name: str) -> Any:
    """The architecture from ultralytics' `<name>.yaml`, 80 COCO classes, random weights."""
    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel, SegmentationModel

    model_class = SegmentationModel if name in SEG_VARIANTS else DetectionModel
    return model_class(f"{name}.yaml", nc=80, verbose=False)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A state_dict from a YOLO weights file, never running pickled code.

    safetensors and plain state_dicts are read by the foundation's reader; an ultralytics checkpoint
    (a pickled model) is read with `weights_only=True` against ultralytics' allow-list of its own
    model classes, and refused when it needs anything else.
    """
    if is_safetensors(path):
        return read_state_dict(path)
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        loaded = _read_ultralytics_checkpoint(path)
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise WeightsInvalidError(
            f"{path} is not a readable weights file ({str(exc).splitlines()[0]})"
        ) from None
    return _state_dict_of(loaded, path)


def _state_dict_of(loaded: Any, path: Path) -> dict[str, Any]:
    """The tensors of a plain state_dict, or of the model inside an ultralytics checkpoint (its EMA
    copy when there is one, as ultralytics itself uses), in float32."""
    if isinstance(loaded, dict):
        for key in ("ema", "model"):
            model: Any = loaded.get(key)
            if model is not None and hasattr(model, "state_dict"):
                return {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
            if isinstance(model, dict):
                return model
        if all(hasattr(v, "shape") for v in loaded.values()):
            return loaded
    raise WeightsInvalidError(f"{path} holds no YOLO model weights ({type(loaded).__name__})")


def _read_ultralytics_checkpoint(path: Path) -> Any:
    import inspect

    import_ultralytics()
    from ultralytics.nn.tasks import torch_safe_load

    refused = (
        f"{path} is a pickled checkpoint that ultralytics' safe loader (torch.load weights_only=True with "
        "its allow-list of model classes) does not accept, so it is not loaded: loading it freely could "
        "run code. Use an official ultralytics file, or save the model's state_dict as .safetensors."
    )
    if "safe_only" not in inspect.signature(torch_safe_load).parameters:
        raise WeightsInvalidError(
            f"{path} is an ultralytics checkpoint; reading it safely needs an ultralytics release with "
            "weights_only loading (torch_safe_load(safe_only=...)): pip install -U ultralytics"
        )
    if path.suffix != ".pt":
        raise WeightsInvalidError(f"{path}: ultralytics checkpoints are read from .pt files; rename it")
    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=True)
    except (pickle.UnpicklingError, TypeError, ModuleNotFoundError, AttributeError, RuntimeError):
        raise WeightsInvalidError(refused) from None
    return ckpt


def download(name: str) -> Any:
    def fetch_with_ultralytics(path: Path) -> None:
        import_ultralytics()
        from ultralytics.utils.downloads import safe_download

        safe_download(url=f"{RELEASE_URL}/{name}.pt", file=path, min_bytes=1e5, progress=True)
        if not path.is_file():
            raise OSError(f"ultralytics could not download {name}.pt")

    return fetch_with_ultralytics


def display_name(name: str) -> str:
    """yolov8n -> YOLOv8n, yolo11n -> YOLO11n, yolo26n -> YOLO26n."""
    return name.replace("yolov", "YOLOv").replace("yolo", "YOLO")


def make_spec(name: str) -> DetectorSpec:
    if name in SEG_VARIANTS:
        coco_map, mask_map, params = SEG_VARIANTS[name]
        return SegmenterSpec(
            **_common_fields(name, coco_map, f"instance segmentation, {params} M parameters"),
            mask_map=mask_map,
        )
    coco_map, params = VARIANTS[name]
    return DetectorSpec(**_common_fields(name, coco_map, f"{params} M parameters"))


def select_predictions(
    raw: np.ndarray, conf: float, iou: float, max_det: int, agnostic: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's YOLO output (4 + classes, anchors): centre-size boxes and class scores -> best class
    per box above `conf` -> per-class NMS. Returns the kept anchors, their class ids, scores and
    corner boxes in the network input's pixels, best first."""
    # Reduce over classes along contiguous rows first; only candidates above `conf` go further.
    keep = np.flatnonzero(raw[4:].max(axis=0) > conf)
    class_ids = raw[4:, keep].argmax(axis=0)
    scores = raw[4 + class_ids, keep]
    if len(keep) > MAX_NMS:
        best = np.argsort(-scores, kind="stable")[:MAX_NMS]
        keep, class_ids, scores = keep[best], class_ids[best], scores[best]
    xywh = raw[:4, keep].T
    boxes = np.empty_like(xywh)
    boxes[:, :2] = xywh[:, :2] - xywh[:, 2:] / 2
    boxes[:, 2:] = xywh[:, :2] + xywh[:, 2:] / 2
    kept = nms(boxes, scores, class_ids, iou, max_det, agnostic)
    return keep[kept], class_ids[kept], scores[kept], boxes[kept]


def yolo_detections(outputs: tuple[Any, ...]) -> list[tuple[Any, Any, Any]]:
    """Each image's (xyxy boxes, scores, class ids) from a YOLO network's two engine outputs: (box
    rows, class rows) of a detector, (predictions, prototypes) of a -seg model, through
    `select_predictions` at `ENGINE_CONF` / `ENGINE_IOU`. What `--engine auto` compares between
    engines."""
    first, second = outputs[:2]
    rows = 4 + len(coco80())
    predictions = np.concatenate([first, second], axis=1) if first.shape[1] == 4 else first
    found = []
    for image in predictions:
        _, ids, scores, boxes = select_predictions(image[:rows], ENGINE_CONF, ENGINE_IOU, ENGINE_MAX_DET)
        found.append((boxes, scores, ids))
    return found


def _common_fields(name: str, coco_map: float, what: str) -> dict[str, Any]:
    return dict(
        name=name,
        backend="ultralytics",
        source="ultralytics",
        description=f"ultralytics {display_name(name)}, COCO (80 classes), {what}",
        licence=LICENCE,
        weights=WeightsFile(filename=f"{name}.pt", url=f"{RELEASE_URL}/{name}.pt"),
        categories=coco80(),
        build=lambda: build_network(name),
        download=download(name),
        imgsz=DEFAULT_IMGSZ,
        coco_map=coco_map,
        requires=("ultralytics", "cv2"),
        install="pixelsift[yolo]",
        read_weights=read_checkpoint,
        preprocessing=YOLO_PREPROCESSING,
        detections=yolo_detections,
    )


def register_models() -> None:
    for name in (*VARIANTS, *SEG_VARIANTS):
        register(make_spec(name))
