"""The only package that knows which models exist, where their weights are, and how to build them."""

from .preprocess import Preprocessing
from .registry import DEFAULT_CLASSIFIER, ModelSpec, WeightsFile, get_model_spec, list_models, register

__all__ = [
    "DEFAULT_CLASSIFIER",
    "ModelSpec",
    "Preprocessing",
    "WeightsFile",
    "get_model_spec",
    "list_models",
    "register",
]
