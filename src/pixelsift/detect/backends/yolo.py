"""Runs ultralytics YOLO detectors (records in `pixelsift.models.families.yolo`) through pixelsift's runner.

pixelsift does the same for every detector: letterboxing in the decoding threads (exactly ultralytics'
arithmetic), the network through `ModelRunner` (device, precision, channels-last), per-class NMS,
boxes mapped back to the photo.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelsift.core.boxes import nms
from pixelsift.detect.detections import Detections
from pixelsift.detect.detector import Detector
from pixelsift.models.families.yolo import DEFAULT_IMGSZ, import_ultralytics
from pixelsift.models.records import DetectorSpec
from pixelsift.models.weights import load_network
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner

MAX_NMS = 30000  # candidate boxes NMS looks at, as ultralytics


class YoloDetector(Detector):
    """YOLO through `ModelRunner`: letterbox -> network -> best class per box -> per-class NMS."""

    def __init__(self, spec: DetectorSpec, runner: Any, imgsz: int, stride: int, **kwargs: Any):
        # On a CPU one image at a time lets each keep its own minimal letterbox (as ultralytics does);
        # a GPU wants batches, which need one square input size.
        batch_size = 1 if runner.device.type == "cpu" else 16
        super().__init__(
            spec,
            spec.categories,
            batch_size=batch_size,
            decode_fit=imgsz,
            runs_on=runner.describe(),
            **kwargs,
        )
        self.runner = runner
        self.imgsz = imgsz
        self.stride = stride

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        # Alone, an image gets the smallest stride-multiple letterbox (as ultralytics); batches share
        # one square size.
        return letterbox(np.asarray(image), self.imgsz, self.stride, rect=not batched)

    def infer(self, pixels: np.ndarray) -> list[np.ndarray]:
        return list(self.runner(pixels)[0])

    def postprocess(self, raw: np.ndarray, meta: Any, size: tuple[int, int]) -> Detections:
        return decode_predictions(
            raw, meta, self.conf, self.iou, self.max_det, self.categories, self.agnostic
        )


def letterbox(arr: np.ndarray, imgsz: int, stride: int, rect: bool) -> tuple[np.ndarray, Any]:
    """HxWx3 uint8 RGB -> CHW float32 in [0, 1], resized to fit `imgsz` and padded with grey (114),
    with ultralytics' rounding; `rect` pads only to the next multiple of `stride`.
    Returns the pixels and (x scale, y scale, left pad, top pad)."""
    import cv2

    height, width = arr.shape[:2]
    ratio = min(imgsz / height, imgsz / width)
    new_w, new_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
    pad_w, pad_h = imgsz - new_w, imgsz - new_h
    if rect:
        pad_w, pad_h = pad_w % stride, pad_h % stride
    if (new_w, new_h) != (width, height):
        arr = cv2.resize(arr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(pad_h / 2 - 0.1), round(pad_h / 2 + 0.1)
    left, right = round(pad_w / 2 - 0.1), round(pad_w / 2 + 0.1)
    arr = cv2.copyMakeBorder(arr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    pixels = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)
    pixels *= 1.0 / 255.0
    return pixels, (new_w / width, new_h / height, left, top)


def decode_predictions(
    raw: np.ndarray, meta: Any, conf: float, iou: float, max_det: int, categories: Any, agnostic: bool = False
) -> Detections:
    """One image's YOLO output (4 + classes, anchors): centre-size boxes and class scores ->
    best class per box above `conf` -> per-class NMS -> boxes in the letterboxed image's source pixels."""
    gain_x, gain_y, left, top = meta
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
    offset = np.array([left, top, left, top], np.float32)
    gain = np.array([gain_x, gain_y, gain_x, gain_y], np.float32)
    return Detections.from_arrays((boxes[kept] - offset) / gain, scores[kept], class_ids[kept], categories)


def predictions_only(network: Any) -> Any:
    """The network with one output for the runner: in eval mode ultralytics' Detect head returns
    (predictions, raw feature maps)."""
    from torch import nn

    class PredictionsOnly(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            out = self.net(x)
            return out[0] if isinstance(out, tuple | list) else out

    return PredictionsOnly(network)


def load(
    spec: DetectorSpec,
    run_options: RunOptions,
    conf: float = 0.25,
    iou: float = 0.45,
    imgsz: int | None = None,
) -> YoloDetector:
    import_ultralytics()
    network: Any = load_network(spec)
    network.fuse(verbose=False)  # ultralytics folds BatchNorm into its Conv blocks itself
    stride = max(int(network.stride.max()), 32)
    # torch.fx cannot trace the Detect head, and the BatchNorms are already folded.
    runner = ModelRunner(predictions_only(network), run_options, fold_bn=False)
    return YoloDetector(
        spec, runner, imgsz or DEFAULT_IMGSZ, stride, conf=conf, iou=iou, run_options=run_options
    )
