"""The model records: what a model is and everything pixelsift needs to build, load and run it.

One record type per task, each with typed fields (timm's `PretrainedCfg`, torchvision's `Weights`):
`ClassifierSpec` (ImageNet-style classifiers: preprocessing, how to split features from the head),
`DetectorSpec` (COCO detectors: which detect backend runs it, input size, published box mAP) and
`TextImageSpec` (CLIP-style models). `ModelSpec` is what they share. Records are data: nothing here
imports torch, and a detector record names its backend instead of importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pixelsift.models.preprocess import Preprocessing

if TYPE_CHECKING:
    from pathlib import Path

    import torch.nn as nn

    from pixelsift.models.network import SplitNetwork

TASKS = ("classify", "detect", "segment", "text-image")


@dataclass(frozen=True)
class WeightsFile:
    """Where a model's weights come from and how to check them.

    `sha256`: the full hash when the source publishes it; `hash_prefix`: the sha256 prefix that
    torchvision puts in its file names; `package` / `package_path`: an installed Python package that
    ships the file (then no download is ever needed).
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    hash_prefix: str | None = None
    package: str | None = None
    package_path: str | None = None
    size_mb: float | None = None


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What every record has. `task` is fixed by the record type."""

    task: ClassVar[str] = ""

    name: str
    source: str
    description: str
    licence: str
    weights: WeightsFile | None = None
    embed_dim: int | None = None
    categories: tuple[str, ...] = field(default=(), repr=False)
    # Builds the network with random weights, in the layout its weights file expects.
    build: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    # Renames / reshapes a loaded state_dict into `build()`'s layout (e.g. old DenseNet keys).
    convert_state: Callable[[dict[str, Any]], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )
    # Reads a weights file whose format is the source's own (ultralytics checkpoints); default: safe
    # state_dict readers (safetensors, or torch.load with weights_only=True).
    read_weights: Callable[[Path], dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    # Downloads the weights into `path` when the source has its own hub (timm); default: `weights.url`.
    download: Callable[[Path], None] | None = field(default=None, repr=False, compare=False)
    requires: tuple[str, ...] = ()  # Python modules the model needs at run time, beyond torch
    install: str | None = None  # what to pip install for it, when it is not in pixelsift's own dependencies
    upstream: str | None = None  # its name in the source library (timm name, open_clip architecture ...)
    upstream_tag: str | None = None  # the source's weights tag (open_clip pretrained tag)
    recipe: str | None = None  # the training recipe the source publishes
    gflops: float | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise TypeError(f"{type(self).__name__} is not a model record type; use one of the task records")

    @property
    def input_size(self) -> int | None:
        return None

    def info(self) -> dict[str, Any]:
        """The record's source-specific facts for `pixelsift models info` and its JSON (names as
        users know them from the source: timm_name, weights_enum, open_clip_arch ...)."""
        out: dict[str, Any] = {}
        if self.upstream is not None:
            out[_UPSTREAM_KEY.get(self.source, "upstream")] = self.upstream
        if self.recipe is not None or self.gflops is not None:
            out.update(recipe=self.recipe, gflops=self.gflops)
        if self.install is not None:
            out["pip"] = self.install
        return out


_UPSTREAM_KEY = {"timm": "timm_name", "torchvision": "weights_enum", "open_clip": "open_clip_arch"}


@dataclass(frozen=True, kw_only=True)
class ClassifierSpec(ModelSpec):
    """An image classifier: a network whose last linear layer maps features to `categories`."""

    task: ClassVar[str] = "classify"

    preprocessing: Preprocessing
    imagenet_top1: float | None = None
    # Cuts the built network into features and head; None: at its last nn.Linear (split_at_last_linear).
    split: Callable[[nn.Module], SplitNetwork] | None = field(default=None, repr=False, compare=False)
    # The layer class activation maps look at (a module name inside the features, e.g. "layer4"); None:
    # the last convolutional stage (or, for a transformer, the last token output), found by a forward pass.
    cam_layer: str | None = None

    @property
    def input_size(self) -> int:
        return self.preprocessing.crop


@dataclass(frozen=True, kw_only=True)
class TextImageSpec(ModelSpec):
    """A text-image model (CLIP): photos and sentences in one vector space."""

    task: ClassVar[str] = "text-image"

    preprocessing: Preprocessing

    @property
    def input_size(self) -> int:
        return self.preprocessing.crop

    def info(self) -> dict[str, Any]:
        return {**super().info(), "open_clip_tag": self.upstream_tag}


# The detect backends a DetectorSpec can name (pixelsift.detect.backends runs each).
DETECT_BACKENDS = ("torch_ssd", "opencv_ssd", "torchvision", "ultralytics")


@dataclass(frozen=True, kw_only=True)
class DetectorSpec(ModelSpec):
    """An object detector: `backend` names the pixelsift.detect backend that runs it."""

    task: ClassVar[str] = "detect"

    backend: str
    imgsz: int  # the network's default input size in pixels
    coco_map: float | None = None  # published COCO val2017 box mAP
    # How its input is scaled, for a convolutional network that runs through pixelsift's engines
    # (`runtime.engines`: torch, ONNX Runtime, OpenVINO, chosen by `--engine auto`: the SSD, YOLO);
    # None: its backend runs it its own way (torchvision, OpenCV DNN).
    preprocessing: Preprocessing | None = None
    # With `preprocessing`: a batch's raw outputs -> each image's (boxes, scores, class ids), what
    # `--engine auto` compares between an engine and torch fp32 (`runtime.tuning.detection_agreement`).
    detections: Callable[[tuple[Any, ...]], list[tuple[Any, Any, Any]]] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend not in DETECT_BACKENDS:
            raise ValueError(f"{self.name}: backend must be one of {DETECT_BACKENDS}, not {self.backend!r}")
        if self.preprocessing is not None and self.detections is None:
            raise ValueError(f"{self.name}: a detector run through the engines needs `detections`")

    @property
    def input_size(self) -> int:
        return self.imgsz

    def info(self) -> dict[str, Any]:
        return {"input_size": self.imgsz, "coco_map": self.coco_map, **super().info()}


@dataclass(frozen=True, kw_only=True)
class SegmenterSpec(DetectorSpec):
    """An instance segmenter: a detector whose objects also carry their masks (Mask R-CNN, YOLO-seg).
    It detects too (`pixelsift detect -m NAME` lists its boxes)."""

    task: ClassVar[str] = "segment"

    mask_map: float | None = None  # published COCO val2017 mask mAP

    def info(self) -> dict[str, Any]:
        return {**super().info(), "mask_map": self.mask_map}


def preprocessing_of(spec: ModelSpec) -> Preprocessing:
    """The input scaling of a model that runs through pixelsift's engines (every classifier, and the
    detectors whose record has one)."""
    found = getattr(spec, "preprocessing", None)
    if not isinstance(found, Preprocessing):
        raise TypeError(
            f"{spec.name} does not run through pixelsift's engines (its record has no preprocessing)"
        )
    return found
