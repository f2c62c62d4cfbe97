"""pixelsift: use pretrained neural networks on your own photos.

    >>> import pixelsift
    >>> pixelsift.classify("samples/chelsea.png", top_k=3).to_pandas()     # doctest: +SKIP

Heavy libraries (torch, torchvision, ultralytics ...) load on first use, so `import pixelsift` is fast.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access, PEP 562)
_LAZY = {
    "classify": "classify",
    "Classifier": "classify",
    "Classification": "classify",
    "ClassificationResults": "classify",
    "ImageModel": "models.loaded",
    "ModelSpec": "models.registry",
    "get_model_spec": "models.registry",
    "list_models": "models.registry",
    "ModelRunner": "runner",
    "open_image": "images",
    "Settings": "config",
    "get_settings": "config",
    "PixelsiftError": "errors",
    "Detections": "detect",
    "load_detector": "detect",
    "PhotoIndex": "library",
    "SearchResults": "library",
    "read_dataset": "datasets",
    "Dataset": "datasets",
    "make_shapes_dataset": "datasets",
    "embed": "embed",
    "Embedder": "embed",
    "Embeddings": "embed",
    "FeatureCache": "featurecache",
    "train": "transfer",
    "evaluate": "transfer",
    "load_trained": "transfer",
    "TrainedModel": "transfer",
    "TrainResult": "transfer",
    "finetune": "finetune",
    "FinetuneOptions": "finetune",
    "write_report": "reports",
}
# Subpackages that are also callables: `pixelsift.detect(paths)` and `pixelsift.detect.load_detector`.
_CALLABLE_PACKAGES = ("detect",)

__all__ = ["__version__", *_LAZY, *_CALLABLE_PACKAGES]


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pixelsift' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    """`pixelsift.classify`, `pixelsift.embed` and `pixelsift.finetune` are functions that live in
    submodules of the same name. Importing such a submodule would rebind the package attribute to the
    module (so `pixelsift.embed(...)` would fail after `pixelsift.train(...)`); this keeps the function.
    The modules stay importable (`from pixelsift.embed import Embedder`, `sys.modules`)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
