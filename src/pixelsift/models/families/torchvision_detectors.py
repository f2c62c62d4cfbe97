"""torchvision's COCO detector records (Faster R-CNN, RetinaNet, FCOS, SSD) and instance segmenters
(Mask R-CNN), read from their weights records.

Download URL, hash prefix, class names and published box mAP come from torchvision's `WeightsEnum`
entry; weights go through pixelsift's verified cache like every other torchvision model.
`pixelsift.detect.backends.torchvision_detectors` runs them.
"""

from __future__ import annotations

from typing import Any

from pixelsift.models.families.torchvision_common import default_weights, weights_file
from pixelsift.models.records import DetectorSpec, SegmenterSpec
from pixelsift.models.registry import register

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
SEGMENTERS: dict[str, int] = {
    "maskrcnn_resnet50_fpn": 800,
    "maskrcnn_resnet50_fpn_v2": 800,
}


def _builder(name: str) -> Any:
    def build() -> Any:
        import torchvision

        return torchvision.models.get_model(name, weights=None, weights_backbone=None)

    return build


def spec_from_weights(name: str, input_size: int) -> DetectorSpec:
    weights = default_weights(name)
    meta = weights.meta
    if name in SEGMENTERS:
        metrics = meta["_metrics"]["COCO-val2017"]
        return SegmenterSpec(
            **_common_fields(name, input_size, weights),
            mask_map=metrics["mask_map"],
            # outlines (polygons) and mask resizing use OpenCV
            requires=("cv2",),
            install="pixelsift[opencv]",
        )
    return DetectorSpec(**_common_fields(name, input_size, weights))


def _common_fields(name: str, input_size: int, weights: Any) -> dict[str, Any]:
    meta = weights.meta
    return dict(
        name=name,
        backend="torchvision",
        source="torchvision",
        description=f"torchvision {name}, COCO ({weights})",
        licence="BSD-3-Clause (code); weights: see torchvision docs",
        weights=weights_file(weights),
        categories=tuple(meta["categories"]),
        build=_builder(name),
        imgsz=input_size,
        coco_map=meta["_metrics"]["COCO-val2017"]["box_map"],
        upstream=str(weights),
        recipe=meta.get("recipe"),
        gflops=meta.get("_ops"),
    )


def register_models() -> None:
    for name, input_size in {**DETECTORS, **SEGMENTERS}.items():
        register(spec_from_weights(name, input_size))
