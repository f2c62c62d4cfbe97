"""torchvision's ImageNet classifiers, each described by its own weights record.

Preprocessing, class names, download URL, hash and published accuracy all come from torchvision's
`WeightsEnum` entry (`weights.transforms()`, `weights.meta`); nothing here is written by hand except the
penultimate width, which the registry self-test checks against the built network.
"""

from __future__ import annotations

import re
from typing import Any

from pixelsift.models.families.torchvision_common import default_weights, weights_file
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import register

# name -> penultimate (embedding) width. The list is curated: every entry is built in the test suite.
CLASSIFIERS: dict[str, int] = {
    "alexnet": 4096,
    "vgg16": 4096,
    "vgg19": 4096,
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "densenet121": 1024,
    "densenet201": 1920,
    "inception_v3": 2048,
    "googlenet": 1024,
    "mobilenet_v2": 1280,
    "mobilenet_v3_small": 1024,
    "mobilenet_v3_large": 1280,
    "efficientnet_b0": 1280,
    "efficientnet_v2_s": 1280,
    "convnext_tiny": 768,
    "vit_b_16": 768,
    "swin_t": 768,
}

# Keyword arguments torchvision itself uses when it builds these with pretrained weights.
_PRETRAINED_KWARGS: dict[str, dict[str, Any]] = {
    "inception_v3": {"aux_logits": True, "transform_input": True, "init_weights": False},
    "googlenet": {"aux_logits": True, "transform_input": True, "init_weights": False},
}

# Old DenseNet checkpoints name layers "norm.1" where the module is now "norm1" (torchvision does the same).
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def convert_densenet_state(state: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        match = _DENSENET_KEY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def _builder(name: str) -> Any:
    def build() -> Any:
        import torchvision

        return torchvision.models.get_model(name, weights=None, **_PRETRAINED_KWARGS.get(name, {}))

    return build


def spec_from_weights(name: str, embed_dim: int) -> ClassifierSpec:
    weights = default_weights(name)
    meta = weights.meta
    return ClassifierSpec(
        name=name,
        source="torchvision",
        description=f"torchvision {name}, ImageNet-1k ({weights})",
        licence="BSD-3-Clause (code); weights: see torchvision docs",
        preprocessing=Preprocessing.from_torchvision(weights.transforms()),
        weights=weights_file(weights),
        embed_dim=embed_dim,
        imagenet_top1=meta["_metrics"]["ImageNet-1K"]["acc@1"],
        categories=tuple(meta["categories"]),
        build=_builder(name),
        convert_state=convert_densenet_state if name.startswith("densenet") else None,
        upstream=str(weights),
        recipe=meta.get("recipe"),
        gflops=meta.get("_ops"),
    )


def register_models() -> None:
    for name, dim in CLASSIFIERS.items():
        register(spec_from_weights(name, dim))
