"""Runs torchvision's COCO detectors (records in `pixelsift.models.families.torchvision_detectors`).

The networks resize and normalise inside themselves; pixelsift only hands them RGB tensors in [0, 1]
(the weights' own `transforms()`), each at its own size: a batch is a list of images, which torchvision
pads into one forward pass (8 per pass on a GPU; on a CPU one per pass, in several streams).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelsift.core.boxes import nms
from pixelsift.detect.detections import Detections
from pixelsift.detect.detector import Detector
from pixelsift.errors import UsageError
from pixelsift.models.families.torchvision_common import default_weights
from pixelsift.models.records import DetectorSpec
from pixelsift.models.weights import load_network
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner


def tensor_outputs(network: Any) -> Any:
    """The adapter between torchvision's detection API and the runner, in one place: torchvision
    detectors take a list of CHW images and return a list of dicts; the runner passes a batch (a
    tensor, or a list of tensors of different sizes) and wants tensors back: every image's boxes,
    scores and labels one after the other, and how many belong to each image."""
    import torch
    from torch import nn

    class TensorOutputs(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            outs = self.net(list(x))
            counts = torch.tensor([len(o["boxes"]) for o in outs])
            joined = [torch.cat([o[k] for o in outs]) for k in ("boxes", "scores", "labels")]
            return (*joined, counts)

    return TensorOutputs(network)


def set_thresholds(network: Any, conf: float, iou: float) -> None:
    """Make the network's own score filter and NMS use `conf` and `iou` (Faster R-CNN keeps them in
    its ROI heads, RetinaNet, FCOS and SSD on the model)."""
    owner = getattr(network, "roi_heads", network)
    for attr, value in (("score_thresh", conf), ("nms_thresh", iou)):
        if hasattr(owner, attr):
            setattr(owner, attr, value)


class TorchvisionDetector(Detector):
    """Each photo keeps its own shape: a batch is a list, which the network pads into one pass."""

    def __init__(self, spec: DetectorSpec, runner: Any, transform: Any, **kwargs: Any):
        super().__init__(
            spec,
            spec.categories,
            # a GPU wants batches; on a CPU, streams of one image each keep every core busy
            batch_size=1 if runner.device.type == "cpu" else 8,
            decode_size=spec.imgsz,
            runs_on=runner.describe(),
            **kwargs,
        )
        self.runner = runner
        self.transform = transform

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        return self.transform(image).numpy(), None

    def infer(self, pixels: np.ndarray | list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        boxes, scores, labels, counts = self.runner(list(pixels))
        ends = np.cumsum(counts.astype(np.int64))
        starts = ends - counts.astype(np.int64)
        return [(boxes[a:b], scores[a:b], labels[a:b]) for a, b in zip(starts, ends, strict=True)]

    def postprocess(self, raw: tuple[np.ndarray, ...], meta: Any, size: tuple[int, int]) -> Detections:
        boxes, scores, labels = raw
        labels = labels.astype(np.int64)
        keep = np.flatnonzero(scores >= self.conf)
        kept = keep[nms(boxes[keep], scores[keep], labels[keep], self.iou, self.max_det, self.agnostic)]
        return Detections.from_arrays(boxes[kept], scores[kept], labels[kept], self.categories)


def load(
    spec: DetectorSpec,
    run_options: RunOptions,
    conf: float = 0.25,
    iou: float = 0.45,
    imgsz: int | None = None,
) -> TorchvisionDetector:
    if imgsz is not None:
        raise UsageError(f"{spec.name} sets its own input size; imgsz applies to YOLO and ONNX models")
    network = load_network(spec)
    set_thresholds(network, conf, iou)
    # FrozenBatchNorm and data-dependent control flow: nothing for torch.fx to fold here.
    runner = ModelRunner(tensor_outputs(network), run_options, fold_bn=False)
    transform = default_weights(spec.name).transforms()
    return TorchvisionDetector(spec, runner, transform, conf=conf, iou=iou, run_options=run_options)
