"""Class names that records share: ImageNet-1k's 1000 classes and COCO's objects in both numberings.

COCO's 80 object classes carry ids 1-90 in the original annotations (ten ids are unused). torchvision's
detectors and TensorFlow's detection-zoo models number them that way (index 0 = background);
ultralytics' YOLO models number the 80 names 0-79. The lists are packaged (`data/`), so naming a class
never needs torchvision imported, and every backend spells a class the same way.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard order (torchvision's list, packaged with
    pixelsift so that the default model does not need torchvision imported: ~2 s on a small CPU)."""
    text = files("pixelsift").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


UNUSED = "N/A"
BACKGROUND = "__background__"


@lru_cache(maxsize=1)
def coco91() -> tuple[str, ...]:
    """Names indexed by original COCO category id (0 = background, "N/A" for the ten unused ids)."""
    text = files("pixelsift").joinpath("data/coco_categories.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


@lru_cache(maxsize=1)
def coco80() -> tuple[str, ...]:
    """The 80 COCO class names in YOLO's 0-79 order.

    >>> coco80()[:3], len(coco80())
    (('person', 'bicycle', 'car'), 80)
    """
    return tuple(name for name in coco91() if name not in (UNUSED, BACKGROUND))
