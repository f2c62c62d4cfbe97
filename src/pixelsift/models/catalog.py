"""Registers every built-in model family. Add a backend here with one line."""

from __future__ import annotations


def register_all() -> None:
    from ..detect import opencv_dnn, torchvision_detectors, yolo
    from . import efficientnet_lite, open_clip_models, timm_models, torchvision_models

    efficientnet_lite.register_models()
    torchvision_models.register_models()
    timm_models.register_models()
    open_clip_models.register_models()
    opencv_dnn.register_models()
    torchvision_detectors.register_models()
    yolo.register_models()
