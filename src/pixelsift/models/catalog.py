"""The built-in model families, in the order `pixelsift models` lists them. Add a family here with one line.

Each module in `models/families/` has a `register_models()` that registers its records. Families that
need torchvision imported to describe their models (its weights records hold the preprocessing,
class names and file names) are registered only when a name is not found among the others, or when
all models are listed: importing torchvision costs about 2 s on a small CPU, and the default model
does not need it.
"""

from __future__ import annotations

# (module, needs torchvision)
FAMILIES: tuple[tuple[str, bool], ...] = (
    ("pixelsift.models.families.efficientnet_lite", False),
    ("pixelsift.models.families.torchvision_classifiers", True),
    ("pixelsift.models.families.timm_models", False),
    ("pixelsift.models.families.open_clip_models", False),
    ("pixelsift.models.families.ssd", False),
    ("pixelsift.models.families.torchvision_detectors", True),
    ("pixelsift.models.families.yolo", False),
)
