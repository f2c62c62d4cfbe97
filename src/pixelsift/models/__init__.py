"""What models exist: typed records, preprocessing, the weights cache, one module per family (families/)."""

from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import (
    ClassifierSpec,
    DetectorSpec,
    ModelSpec,
    SegmenterSpec,
    TextImageSpec,
    WeightsFile,
)
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_model_spec, get_spec_of, list_models, register

__all__ = [
    "DEFAULT_CLASSIFIER",
    "ClassifierSpec",
    "DetectorSpec",
    "ModelSpec",
    "Preprocessing",
    "SegmenterSpec",
    "TextImageSpec",
    "WeightsFile",
    "get_model_spec",
    "get_spec_of",
    "list_models",
    "register",
]
