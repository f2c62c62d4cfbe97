"""torchvision's COCO detectors (Faster R-CNN, RetinaNet, FCOS, SSD), each described by its weights record.

Download URL, hash prefix, class names, published box mAP and the input transform come from
torchvision's `WeightsEnum` entry; weights go through pixelsift's verified cache like every other
torchvision model. The networks resize and normalise inside themselves; pixelsift only hands them
RGB tensors in [0, 1] (the weights' own `transforms()`), one image per forward pass.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..models.registry import ModelSpec, WeightsFile, register
from .detections import Detections
from .detector import Detector, nms

# name -> the shorter side the network resizes photos to (its GeneralizedRCNNTransform / SSD size);
# the registry self-test checks each against the built network.
DETECTORS: dict[str, int] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": 320,
    "fasterrcnn_mobilenet_v3_large_fpn": 800,
    "fasterrcnn_resnet50_fpn": 800,
    "fasterrcnn_resnet50_fpn_v2": 800,
    "retinanet_resnet50_fpn": 800,
    "retinanet_resnet50_fpn_v2": 800,
    "fcos_resnet50_fpn": 800,
    "ssdlite320_mobilenet_v3_large": 320,
    "ssd300_vgg16": 300,
}

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def _builder(name: str) -> Any:
    def build() -> Any:
        import torchvision

        return torchvision.models.get_model(name, weights=None, weights_backbone=None)

    return build


def tensor_outputs(network: Any) -> Any:
    """The adapter between torchvision's detection API and the runner, in one place: torchvision
    detectors take a list of CHW images and return a list of dicts; the runner passes a batch tensor
    and wants tensors back. One image per call: (boxes (K, 4), scores (K,), labels (K,))."""
    from torch import nn

    class TensorOutputs(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            if x.shape[0] != 1:
                raise ValueError("torchvision detectors run one image per forward pass here")
            out = self.net([x[0]])[0]
            return out["boxes"], out["scores"], out["labels"]

    return TensorOutputs(network)


def set_thresholds(network: Any, conf: float, iou: float) -> None:
    """Make the network's own score filter and NMS use `conf` and `iou` (Faster R-CNN keeps them in
    its ROI heads, RetinaNet, FCOS and SSD on the model)."""
    owner = getattr(network, "roi_heads", network)
    for attr, value in (("score_thresh", conf), ("nms_thresh", iou)):
        if hasattr(owner, attr):
            setattr(owner, attr, value)


class TorchvisionDetector(Detector):
    batchable = False  # the networks resize each photo themselves, to its own shape

    def __init__(self, spec: ModelSpec, runner: Any, transform: Any, **kwargs: Any):
        super().__init__(
            spec,
            spec.categories,
            batch_size=1,
            decode_size=int(spec.extra["input_size"]),
            runs_on=runner.describe(),
            **kwargs,
        )
        self.runner = runner
        self.transform = transform

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        return self.transform(image).numpy(), None

    def infer(self, pixels: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        return [self.runner(pixels)]

    def postprocess(self, raw: tuple[np.ndarray, ...], meta: Any, size: tuple[int, int]) -> Detections:
        boxes, scores, labels = raw
        labels = labels.astype(np.int64)
        keep = np.flatnonzero(scores >= self.conf)
        kept = keep[nms(boxes[keep], scores[keep], labels[keep], self.iou, self.max_det)]
        return Detections.from_arrays(boxes[kept], scores[kept], labels[kept], self.categories)


def load(
    spec: ModelSpec,
    device: str | None = None,
    precision: str | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    threads: int | None = None,
    imgsz: int | None = None,
) -> TorchvisionDetector:
    import torchvision

    from ..errors import UsageError
    from ..models.weights import load_network
    from ..runner import ModelRunner

    if imgsz is not None:
        raise UsageError(f"{spec.name} sets its own input size; imgsz applies to YOLO and ONNX models")
    network = load_network(spec)
    set_thresholds(network, conf, iou)
    # FrozenBatchNorm and data-dependent control flow: nothing for torch.fx to fold here.
    runner = ModelRunner(
        tensor_outputs(network), device=device, precision=precision, threads=threads, fold_bn=False
    )
    transform = torchvision.models.get_model_weights(spec.name).DEFAULT.transforms()
    return TorchvisionDetector(spec, runner, transform, conf=conf, iou=iou)


def spec_from_weights(name: str, input_size: int) -> ModelSpec:
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    filename = weights.url.rsplit("/", 1)[-1]
    prefix = _HASH_IN_NAME.search(filename)
    meta = weights.meta
    return ModelSpec(
        name=name,
        task="detect",
        source="torchvision",
        description=f"torchvision {name}, COCO ({weights})",
        licence="BSD-3-Clause (code); weights: see torchvision docs",
        weights=WeightsFile(
            filename=filename,
            url=weights.url,
            hash_prefix=prefix.group(1) if prefix else None,
            size_mb=meta.get("_file_size"),
        ),
        categories=tuple(meta["categories"]),
        build=_builder(name),
        extra={
            "input_size": input_size,
            "coco_map": meta["_metrics"]["COCO-val2017"]["box_map"],
            "weights_enum": str(weights),
            "recipe": meta.get("recipe"),
            "gflops": meta.get("_ops"),
            "load": load,
        },
    )


def register_models() -> None:
    for name, input_size in DETECTORS.items():
        register(spec_from_weights(name, input_size))
