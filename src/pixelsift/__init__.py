"""pixelsift: use pretrained neural networks on your own photos.

    >>> import pixelsift
    >>> pixelsift.classify("samples/chelsea.png", top_k=3).to_pandas()     # doctest: +SKIP

Heavy libraries (torch, torchvision, ultralytics ...) load on first use, so `import pixelsift` is fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from pixelsift.version import __version__

# public name -> module that defines it (imported on first access, PEP 562)
_LAZY = {
    "classify": "runtime.classify",
    "Classifier": "runtime.classify",
    "Classification": "runtime.classification",
    "ClassificationResults": "runtime.classification",
    "ImageModel": "runtime.loaded",
    "ModelSpec": "models.registry",
    "get_model_spec": "models.registry",
    "list_models": "models.registry",
    "ModelRunner": "runtime.torch_runner",
    "open_image": "imaging.images",
    "Settings": "config",
    "get_settings": "config",
    "PixelsiftError": "errors",
    "Detections": "detect",
    "load_detector": "detect",
    "segment": "detect",
    "load_segmenter": "detect",
    "Masks": "detect",
    "read_text": "ocr",
    "TextReader": "ocr",
    "PhotoIndex": "library",
    "SearchResults": "library",
    "read_dataset": "imaging.datasets",
    "Dataset": "imaging.datasets",
    "make_shapes_dataset": "imaging.datasets",
    "make_hard_dataset": "imaging.generated",
    "embed": "features.embed",
    "Embedder": "features.embedder",
    "Embeddings": "features.embed",
    "FeatureCache": "features.cache",
    "train": "transfer.training",
    "evaluate": "transfer.training",
    "load_trained": "transfer.trained",
    "TrainedModel": "transfer.trained",
    "TrainResult": "transfer.training",
    "finetune": "transfer.finetune",
    "FinetuneOptions": "transfer.finetune",
    "write_report": "transfer.reports",
    "Explainer": "explain",
    "Explanations": "explain",
}
# Subpackages that are also callables: `pixelsift.detect(paths)` and `pixelsift.detect.load_detector`,
# `pixelsift.explain(paths)`.
_CALLABLE_PACKAGES = ("detect", "explain")
# Subpackages reached as attributes: `pixelsift.batch.run(...)`.
_PACKAGES = ("batch",)

__all__ = ["__version__", *_LAZY, *_CALLABLE_PACKAGES, *_PACKAGES]


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_PACKAGES or name in _PACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pixelsift' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
