"""Object detection: which objects are in a photo, where, and how sure the detector is.

    >>> import pixelsift
    >>> for result in pixelsift.detect("samples/"):            # doctest: +SKIP
    ...     print(result.path, result.summary())
    samples/astronaut.png 1 person
    >>> detector = pixelsift.detect.load_detector("yolov8n", conf=0.4)      # doctest: +SKIP
    >>> detector.detect_image(photo).to_pandas()                           # doctest: +SKIP

`pixelsift.detect(...)` and `pixelsift.detect.detect(...)` are the same function. Backends (ultralytics
YOLO, torchvision, OpenCV DNN) load lazily: importing this package imports none of them.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from pixelsift.detect.api import (
    default_detector_name,
    default_segmenter_name,
    detect,
    load_detector,
    load_segmenter,
    segment,
)
from pixelsift.detect.detections import DetectionResult, Detections
from pixelsift.detect.detector import Detector
from pixelsift.detect.draw import draw_detections
from pixelsift.detect.labels import plural
from pixelsift.detect.masks import Masks

__all__ = [
    "DetectionResult",
    "Detections",
    "Detector",
    "Masks",
    "default_detector_name",
    "default_segmenter_name",
    "detect",
    "draw_detections",
    "load_detector",
    "load_segmenter",
    "plural",
    "segment",
]


class _CallableModule(types.ModuleType):
    """Lets `pixelsift.detect(paths)` work while `pixelsift.detect` is also this package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return detect(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
