"""Runs ultralytics YOLO detectors (records in `pixelsift.models.families.yolo`) through pixelsift's runner.

pixelsift does the same for every detector: letterboxing in the decoding threads (exactly ultralytics'
arithmetic), the network through a runner, per-class NMS, boxes mapped back to the photo. By default
(and with `--engine torch`) the network runs in `ModelRunner` (device, precision, channels-last) on the
smallest letterbox that holds each photo, as ultralytics does; with `--engine auto|onnxruntime|openvino`
through `runtime.engines` like the other networks (`auto` measures torch, ONNX Runtime and OpenVINO
once per machine), on square letterboxed uint8 inputs that the graph scales.

A -seg model's masks are assembled as ultralytics does (each object's 32 coefficients times the
prototype masks, upsampled to the input, cropped to its box), then the letterbox padding is cut off:
the masks stay at the network's input resolution (`pixelsift.detect.masks.Masks`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pixelsift.detect.detections import Detections
from pixelsift.detect.detector import Detector
from pixelsift.detect.masks import Masks
from pixelsift.models.families.yolo import DEFAULT_IMGSZ, import_ultralytics, select_predictions
from pixelsift.models.records import DetectorSpec, SegmenterSpec
from pixelsift.models.weights import load_network
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner

log = logging.getLogger("pixelsift")

MASK_CHUNK = 32  # masks upsampled at once: bounds the float buffer at 32 x the input size


class YoloDetector(Detector):
    """YOLO through `ModelRunner`: letterbox -> network -> best class per box -> per-class NMS."""

    def __init__(
        self, spec: DetectorSpec, runner: Any, imgsz: int, stride: int, square: bool = False, **kwargs: Any
    ):
        # On a CPU one image at a time lets each keep its own minimal letterbox (as ultralytics does)
        # and keeps every stream busy on a small folder; a GPU wants batches, which need one square
        # input size. `square`: an engine's runner, which takes square uint8 inputs of the size it was
        # exported at (one at a time on a CPU too: a 640 px YOLO gains nothing from batches there).
        options = kwargs.get("run_options") or RunOptions()
        batch_size = int(options.batch_size or (1 if runner.device.type == "cpu" else 16))
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
        self.square = square
        self.planned_runner = square  # an engine's runner comes with its thread plan

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        # Alone, an image gets the smallest stride-multiple letterbox (as ultralytics); batches share
        # one square size, and so does an engine's input.
        square = batched or self.square
        return letterbox(np.asarray(image), self.imgsz, self.stride, rect=not square, uint8=self.square)

    def infer(self, pixels: np.ndarray) -> list[Any]:
        boxes, classes = self.runner(pixels)[:2]  # the network's box rows and class rows
        return list(np.concatenate([boxes, classes], axis=1))

    def postprocess(self, raw: Any, meta: Any, size: tuple[int, int]) -> Detections:
        return decode_predictions(
            raw, meta, self.conf, self.iou, self.max_det, self.categories, self.agnostic
        )


def letterbox(
    arr: np.ndarray, imgsz: int, stride: int, rect: bool, uint8: bool = False
) -> tuple[np.ndarray, Any]:
    """HxWx3 uint8 RGB -> CHW float32 in [0, 1] (`uint8`: CHW uint8, for a runner that scales them),
    resized to fit `imgsz` and padded with grey (114), with ultralytics' rounding; `rect` pads only to
    the next multiple of `stride`. Returns the pixels and (x scale, y scale, left pad, top pad)."""
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
    if uint8:
        return np.ascontiguousarray(arr.transpose(2, 0, 1)), (new_w / width, new_h / height, left, top)
    pixels = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)
    pixels *= 1.0 / 255.0
    return pixels, (new_w / width, new_h / height, left, top)


class YoloSegmenter(YoloDetector):
    """A YOLO -seg model: the detector's boxes, and each kept object's mask from the prototypes."""

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        pixels, meta = super().prepare(image, batched)
        return pixels, (*meta, pixels.shape[1], pixels.shape[2])  # + the input's height and width

    def infer(self, pixels: np.ndarray) -> list[Any]:
        predictions, protos = self.runner(pixels)
        return list(zip(predictions, protos, strict=True))

    def postprocess(self, raw: Any, meta: Any, size: tuple[int, int]) -> Detections:
        predictions, protos = raw
        gain_x, gain_y, left, top, in_h, in_w = meta
        n_classes = len(self.categories)
        kept, class_ids, scores, boxes = select_predictions(
            predictions[: 4 + n_classes], self.conf, self.iou, self.max_det, self.agnostic
        )
        coefficients = predictions[4 + n_classes :, kept].T
        width, height = size
        new_w, new_h = max(round(width * gain_x), 1), max(round(height * gain_y), 1)
        data = assemble_masks(protos, coefficients, boxes, (in_h, in_w))[
            :, top : top + new_h, left : left + new_w
        ]
        offset = np.array([left, top, left, top], np.float32)
        gain = np.array([gain_x, gain_y, gain_x, gain_y], np.float32)
        return Detections.from_arrays(
            (boxes - offset) / gain, scores, class_ids, self.categories, Masks(data, (width, height))
        )


def assemble_masks(
    protos: np.ndarray, coefficients: np.ndarray, boxes: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """ultralytics' `process_mask(..., upsample=True)`: coefficients (n, k) times prototypes (k, h, w),
    bilinearly upsampled to the input `shape` (height, width), > 0 inside each box (input pixels)."""
    import torch
    import torch.nn.functional as F

    height, width = int(shape[0]), int(shape[1])
    out = np.zeros((len(coefficients), height, width), dtype=bool)
    k, mh, mw = protos.shape
    flat = torch.from_numpy(np.ascontiguousarray(protos, dtype=np.float32)).view(k, -1)
    columns = torch.arange(width, dtype=torch.float32)[None, None, :]
    rows = torch.arange(height, dtype=torch.float32)[None, :, None]
    for start in range(0, len(coefficients), MASK_CHUNK):
        part = torch.from_numpy(np.ascontiguousarray(coefficients[start : start + MASK_CHUNK], np.float32))
        logits = (part @ flat).view(-1, mh, mw)
        logits = F.interpolate(logits[None], (height, width), mode="bilinear")[0]
        box = torch.from_numpy(np.ascontiguousarray(boxes[start : start + MASK_CHUNK], np.float32))
        x1, y1, x2, y2 = (box[:, i, None, None] for i in range(4))
        inside = (columns >= x1) & (columns < x2) & (rows >= y1) & (rows < y2)
        out[start : start + len(part)] = ((logits > 0) & inside).numpy()
    return out


def decode_predictions(
    raw: np.ndarray, meta: Any, conf: float, iou: float, max_det: int, categories: Any, agnostic: bool = False
) -> Detections:
    """One image's YOLO output (4 + classes, anchors) -> `select_predictions` -> boxes in the
    letterboxed image's source pixels."""
    gain_x, gain_y, left, top = meta
    _, class_ids, scores, boxes = select_predictions(raw, conf, iou, max_det, agnostic)
    offset = np.array([left, top, left, top], np.float32)
    gain = np.array([gain_x, gain_y, gain_x, gain_y], np.float32)
    return Detections.from_arrays((boxes - offset) / gain, scores, class_ids, categories)


def predictions_and_protos(network: Any) -> Any:
    """A -seg network with two outputs for the runner: in eval mode ultralytics' Segment head returns
    ((predictions with mask coefficients, prototype masks), raw feature maps)."""
    from torch import nn

    class PredictionsAndProtos(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            out = self.net(x)
            predictions, protos = out[0] if isinstance(out[0], tuple | list) else out
            return predictions, protos

    return PredictionsAndProtos(network)


def boxes_and_classes(network: Any) -> Any:
    """The network with two outputs for the runners, as the SSD's (box codes, class scores): in eval
    mode ultralytics' Detect head returns (predictions, raw feature maps); the predictions' first 4 rows
    are boxes (centre, size), the rest class scores."""
    from torch import nn

    class BoxesAndClasses(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            out = self.net(x)
            predictions = out[0] if isinstance(out, tuple | list) else out
            return predictions[:, :4], predictions[:, 4:]

    return BoxesAndClasses(network)


def engine_network(spec: DetectorSpec) -> Any:
    """The network as the runners take it: ultralytics' model with its BatchNorms folded (by
    ultralytics), with two outputs (`boxes_and_classes`, `predictions_and_protos`)."""
    import_ultralytics()
    network: Any = load_network(spec)
    network.fuse(verbose=False)  # ultralytics folds BatchNorm into its Conv blocks itself
    segments = isinstance(spec, SegmenterSpec)
    return predictions_and_protos(network) if segments else boxes_and_classes(network)


def load(
    spec: DetectorSpec,
    run_options: RunOptions,
    conf: float = 0.25,
    iou: float = 0.45,
    imgsz: int | None = None,
) -> YoloDetector:
    from pixelsift.runtime.engines import create_runner

    wrapped = engine_network(spec)
    stride = max(int(wrapped.net.stride.max()), 32)
    size = imgsz or DEFAULT_IMGSZ
    kind = YoloSegmenter if isinstance(spec, SegmenterSpec) else YoloDetector
    # The engines only when asked for (--engine auto|onnxruntime|openvino): their square input costs a
    # third more pixels than the per-photo letterbox of a 4:3 photo, and on the 2-core CPUs measured
    # the torch path stayed faster (README: Segmentation speed), so it stays the default.
    engines = run_options.engine not in (None, "torch")
    if engines and size != DEFAULT_IMGSZ:
        log.info("%s runs in torch at imgsz %d (the engines run it at %d)", spec.name, size, DEFAULT_IMGSZ)
        engines = False
    if engines:
        runner = create_runner(spec, wrapped, run_options, purpose="detect")
    else:  # torch.fx cannot trace the Detect head, and the BatchNorms are already folded
        runner = ModelRunner(wrapped, run_options, fold_bn=False)
    return kind(spec, runner, size, stride, square=engines, conf=conf, iou=iou, run_options=run_options)
