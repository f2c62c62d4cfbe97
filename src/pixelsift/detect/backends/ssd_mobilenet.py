"""Runs the offline SSD-MobileNet-v2 (COCO) as a torch network, through pixelsift's engine layer.

The record (`models.families.ssd`) carries the network's preprocessing, so `runtime.engines` makes its
runner exactly as for a classifier: `--engine auto` measures torch fp32 / bf16, ONNX Runtime and
OpenVINO on this machine and keeps the fastest whose detections agree with torch fp32; CUDA when a GPU
is there. Images are squashed to 300 x 300 (bilinear, in OpenCV's own fixed-point arithmetic, as
`blobFromImage` did) and batched as uint8; the runner scales them to [-1, 1] as the network's first
operation. Several streams run at once (a torch module is thread-safe; an OpenCV net was not).

Post-processing is the graph's own (`ssd_mobilenet_net.image_detections`: TF OD API
`BatchMultiClassNonMaxSuppression` as OpenCV's `DetectionOutput` ran it), then pixelsift's `conf` and
`iou`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.boxes import nms
from pixelsift.detect.detections import Detections
from pixelsift.detect.detector import Detector
from pixelsift.errors import UsageError
from pixelsift.models.categories import coco91
from pixelsift.models.families.ssd import SSD_INPUT
from pixelsift.models.families.ssd_mobilenet_net import default_anchors, image_detections
from pixelsift.models.records import DetectorSpec, preprocessing_of
from pixelsift.models.weights import load_network
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.runner import Runner


class TorchSsdDetector(Detector):
    """SSD-MobileNet-v2 on the engine `create_runner` chose: uint8 batches, several streams."""

    planned_runner = True  # the runner comes from `create_runner`, with its thread plan

    def __init__(self, spec: DetectorSpec, runner: Runner, **kwargs: Any):
        super().__init__(
            spec,
            spec.categories,
            # what --batch-size asks for, else what the engine prefers
            batch_size=int((kwargs.get("run_options") or RunOptions()).batch_size or runner.batch_size),
            decode_size=SSD_INPUT,
            runs_on=runner.describe(),
            **kwargs,
        )
        self.runner = runner
        self.preprocessing = preprocessing_of(spec)
        self.anchor_boxes = default_anchors(self.preprocessing.crop)

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        return self.preprocessing.pixels(image), None  # squashed to 300 x 300 as OpenCV did

    def infer(self, pixels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        codes, logits = self.runner(pixels)[:2]
        return list(zip(codes, logits, strict=True))

    def postprocess(self, raw: tuple[np.ndarray, np.ndarray], meta: Any, size: tuple[int, int]) -> Detections:
        codes, logits = raw
        boxes, scores, class_ids = image_detections(codes, logits, self.anchor_boxes, self.conf)
        width, height = size
        boxes = boxes * np.array([width, height, width, height], np.float32)
        keep = nms(boxes, scores, class_ids, self.iou, self.max_det, self.agnostic)
        return Detections.from_arrays(boxes[keep], scores[keep], class_ids[keep], self.categories)


def load(
    spec: DetectorSpec,
    run_options: RunOptions,
    conf: float = 0.25,
    iou: float = 0.45,
    imgsz: int | None = None,
) -> TorchSsdDetector:
    from pixelsift.runtime.engines import create_runner

    if imgsz is not None:
        raise UsageError(f"{spec.name} has a fixed input size ({SSD_INPUT}); imgsz applies to YOLO and ONNX")
    network = load_network(spec, download=False)
    runner = create_runner(spec, network, run_options, purpose="detect")
    return TorchSsdDetector(spec, runner, conf=conf, iou=iou, run_options=run_options)


def load_graph_file(
    path: Path, run_options: RunOptions, conf: float = 0.25, iou: float = 0.45, imgsz: int | None = None
) -> TorchSsdDetector:
    """A user's own frozen graph of the same family (an SSD-MobileNet-v2 of TensorFlow's detection zoo,
    COCO or trained on other classes), read into the same torch network; any other graph is a
    `WeightsInvalidError` naming what did not fit. Runs in torch (`--engine auto` measures the
    packaged model; a file of the user's is not exported to other engines)."""
    from pixelsift.config import get_settings
    from pixelsift.models.families.ssd import SSD_PREPROCESSING, ssd_detections
    from pixelsift.models.families.ssd_mobilenet_net import (
        SsdMobileNetV2,
        num_classes_of,
        read_graph_weights,
    )
    from pixelsift.models.weights import load_state
    from pixelsift.runtime.engines import create_runner

    if imgsz is not None:
        raise UsageError(f"{path}: an SSD graph has a fixed input size ({SSD_INPUT}); imgsz applies to YOLO")
    state = read_graph_weights(path, get_settings().weights_dir / "converted")
    classes = num_classes_of(state)
    categories = coco91() if classes == len(coco91()) else tuple(f"class {i}" for i in range(classes))
    spec = DetectorSpec(
        name=str(path),
        backend="torch_ssd",
        source="file",
        description=f"SSD-MobileNet-v2 frozen graph read from {path.name}",
        licence="the file's own",
        categories=categories,
        imgsz=SSD_INPUT,
        preprocessing=SSD_PREPROCESSING,
        detections=ssd_detections,
    )
    network = load_state(spec, SsdMobileNetV2(classes), state, str(path)).eval()
    if run_options.engine_name == "auto":
        run_options = RunOptions.of(run_options, engine="torch")
    runner = create_runner(spec, network, run_options, purpose="detect")
    return TorchSsdDetector(spec, runner, conf=conf, iou=iou, run_options=run_options)
