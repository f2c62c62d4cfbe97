"""Registers every built-in model family. Add a backend here with one line.

Families that need torchvision imported to describe their models (its weights records hold the
preprocessing, class names and file names) are registered only when a name is not found among the
others, or when all models are listed: importing torchvision costs about 2 s on a small CPU, and the
default model does not need it.
"""

from __future__ import annotations

import importlib

# (module, needs torchvision), in the order `pixelsift models` lists them.
FAMILIES: tuple[tuple[str, bool], ...] = (
    ("pixelsift.models.efficientnet_lite", False),
    ("pixelsift.models.torchvision_models", True),
    ("pixelsift.models.timm_models", False),
    ("pixelsift.models.open_clip_models", False),
    ("pixelsift.detect.opencv_dnn", False),
    ("pixelsift.detect.torchvision_detectors", True),
    ("pixelsift.detect.yolo", False),
)


def register_families(heavy: bool) -> None:
    """Register the families that need torchvision (`heavy`) or the others."""
    from .registry import registering_family

    for rank, (module, needs_torchvision) in enumerate(FAMILIES):
        if needs_torchvision == heavy:
            with registering_family(rank):
                importlib.import_module(module).register_models()


def register_all() -> None:
    register_families(heavy=False)
    register_families(heavy=True)
