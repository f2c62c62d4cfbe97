"""SSD-MobileNet-v2 (COCO) as a torch network, its weights read from TensorFlow's frozen graph.

The TF Object Detection API's `ssd_mobilenet_v2_coco` (2018-03-29) is, up to its post-processing:
- MobileNet-v2 (depth multiplier 1): a 3x3/2 stem, 17 inverted-residual blocks, a 1x1 head (1280);
- four extra layers, each 1x1 -> depthwise 3x3/2 -> 1x1 (512, 256, 256, 128 channels);
- six box predictors, 3x3 convolutions on `expanded_conv_13`'s expansion (19x19), the head (10x10)
  and the extra layers (5, 3, 2, 1): 3 anchors per cell on the first map, 6 on the others, each with
  4 box codes and 91 class logits (0 = background), 1917 anchors in all at 300x300;
- anchors from the config's `ssd_anchor_generator` and a `faster_rcnn_box_coder` (10, 10, 5, 5).

The network below is that graph in torch: TensorFlow "same" padding on strided convolutions, every
batch norm folded into the convolution before it (the graph stores them unfolded). Its forward takes
pixels in [-1, 1] (the graph's `Preprocessor`: x * 2/255 - 1) and returns `(box codes (N, 1917, 4),
class logits (N, 1917, 91))`; `decode_boxes` and the detector backend do the rest, so every engine
(torch, ONNX Runtime, OpenVINO) runs the same plain convolutional graph.
`state_from_graph` maps the frozen graph's `Const` nodes onto this module's keys (`models.tf_graph`
reads them without TensorFlow), checking every shape.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelsift.core.boxes import nms
from pixelsift.errors import WeightsInvalidError
from pixelsift.models.tf_graph import Graph, read_graph

INPUT_SIZE = 300
NUM_CLASSES = 91  # the TF COCO label map's ids 0 (background) to 90
BN_EPS = 1e-3  # slim's batch_norm default; the graph's own value is read when it is there
# MobileNet-v2's inverted residual blocks: (expansion, output channels, stride), from `expanded_conv`.
BLOCKS = [
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
]
FIRST_MAP_BLOCK = 13  # box predictor 0 reads this block's expansion output
EXTRA_LAYERS = [(256, 512), (128, 256), (128, 256), (64, 128)]  # (1x1 channels, output channels)
ANCHORS_PER_CELL = (3, 6, 6, 6, 6, 6)


@dataclass(frozen=True)
class AnchorConfig:
    """`ssd_anchor_generator` and `faster_rcnn_box_coder` of the TF OD API's ssd_mobilenet_v2_coco.config."""

    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    reduce_boxes_in_lowest_layer: bool = True
    box_code_scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w


class Unit(nn.Module):
    """A convolution (batch norm folded into its weights and bias), optionally followed by ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, depthwise: bool = False):
        super().__init__()
        padding = kernel // 2 if stride == 1 else 0  # strided ones get TensorFlow's uneven `pad_same`
        groups = cin if depthwise else 1
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=padding, groups=groups, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv.stride[0] > 1:
            x = tf_same_pad(x, self.conv.kernel_size[0], self.conv.stride[0])
        return self.conv(x)


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow "SAME" padding before a strided convolution (the extra row/column bottom/right),
    computed from the sizes as plain numbers: an exported graph pads by constants (the SSD's input is
    always 300 x 300; padding traced from dynamic shapes made ONNX Runtime shrink the 2 x 2 map)."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    pad_h = max((-(-height // stride) - 1) * stride + kernel - height, 0)
    pad_w = max((-(-width // stride) - 1) * stride + kernel - width, 0)
    return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, expansion: int, cout: int, stride: int):
        super().__init__()
        mid = cin * expansion
        self.expand = Unit(cin, mid) if expansion != 1 else None
        self.depthwise = Unit(mid, mid, 3, stride, depthwise=True)
        self.project = Unit(mid, cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(block output, expansion output): box predictor 0 reads block 13's expansion."""
        expanded = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(expanded)))
        return (x + y if self.residual else y), expanded


class ExtraLayer(nn.Module):
    """1x1 to fewer channels, depthwise 3x3 stride 2, 1x1 to the output channels; ReLU6 after each."""

    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.reduce = Unit(cin, mid)
        self.depthwise = Unit(mid, mid, 3, 2, depthwise=True)
        self.pointwise = Unit(mid, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.reduce(x))
        x = F.relu6(self.depthwise(x))
        return F.relu6(self.pointwise(x))


class SsdMobileNetV2(nn.Module):
    """Pixels in [-1, 1], (N, 3, 300, 300) -> (box codes (N, A, 4), class logits (N, A, 91))."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.num_classes = num_classes
        self.stem = Unit(3, 32, 3, 2)
        blocks, cin = [], 32
        for expansion, cout, stride in BLOCKS:
            blocks.append(InvertedResidual(cin, expansion, cout, stride))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = Unit(320, 1280)
        extras, cin = [], 1280
        for mid, cout in EXTRA_LAYERS:
            extras.append(ExtraLayer(cin, mid, cout))
            cin = cout
        self.extras = nn.ModuleList(extras)
        map_channels = [BLOCKS[FIRST_MAP_BLOCK - 1][1] * 6, 1280] + [c for _, c in EXTRA_LAYERS]
        self.box_codes = nn.ModuleList(
            nn.Conv2d(c, a * 4, 3, padding=1) for c, a in zip(map_channels, ANCHORS_PER_CELL, strict=True)
        )
        self.class_logits = nn.ModuleList(
            nn.Conv2d(c, a * num_classes, 3, padding=1)
            for c, a in zip(map_channels, ANCHORS_PER_CELL, strict=True)
        )

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self.stem(x))
        maps = []
        for i, block in enumerate(self.blocks):
            x, expanded = block(x)
            if i == FIRST_MAP_BLOCK:
                maps.append(expanded)
        x = F.relu6(self.head(x))
        maps.append(x)
        for extra in self.extras:
            x = extra(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes, logits = [], []
        for fmap, box_conv, class_conv in zip(
            self.feature_maps(x), self.box_codes, self.class_logits, strict=True
        ):
            n = fmap.shape[0]
            # NHWC order, as the graph's reshape: anchors run over rows, columns, then the cell's boxes
            codes.append(box_conv(fmap).permute(0, 2, 3, 1).reshape(n, -1, 4))
            logits.append(class_conv(fmap).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes))
        return torch.cat(codes, 1), torch.cat(logits, 1)


def feature_map_sizes(input_size: int = INPUT_SIZE) -> list[int]:
    """The six maps' sides: stride 16 and 32 of the input ("same" padding rounds up), then halved."""
    side = input_size
    for _ in range(4):  # the stem and the three strided blocks before block 13
        side = math.ceil(side / 2)
    sizes = [side, math.ceil(side / 2)]
    for _ in EXTRA_LAYERS:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def anchors(config: AnchorConfig = AnchorConfig(), input_size: int = INPUT_SIZE) -> np.ndarray:
    """(A, 4) anchors as (y centre, x centre, height, width), fractions of the image, in the order of
    the network's outputs (TF OD API `create_ssd_anchors` + `GridAnchorGenerator`, base size 1)."""
    sizes = feature_map_sizes(input_size)
    layers = len(sizes)
    span = config.max_scale - config.min_scale
    scales = [config.min_scale + span * i / (layers - 1) for i in range(layers)]
    scales.append(1.0)
    out = []
    for layer, side in enumerate(sizes):
        if layer == 0 and config.reduce_boxes_in_lowest_layer:
            boxes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            boxes = [(scales[layer], ar) for ar in config.aspect_ratios]
            boxes.append((math.sqrt(scales[layer] * scales[layer + 1]), 1.0))  # interpolated scale
        heights = np.array([s / math.sqrt(ar) for s, ar in boxes], np.float64)
        widths = np.array([s * math.sqrt(ar) for s, ar in boxes], np.float64)
        stride = 1.0 / side
        centres = (np.arange(side, dtype=np.float64) + 0.5) * stride
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        grid = np.empty((side, side, len(boxes), 4), np.float64)
        grid[..., 0] = cy[..., None]
        grid[..., 1] = cx[..., None]
        grid[..., 2] = heights
        grid[..., 3] = widths
        out.append(grid.reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def decode_boxes(
    codes: np.ndarray, anchor_boxes: np.ndarray, config: AnchorConfig = AnchorConfig()
) -> np.ndarray:
    """Box codes (A, 4: ty, tx, th, tw) -> boxes (A, 4: x1, y1, x2, y2) as fractions of the image."""
    sy, sx, sh, sw = config.box_code_scales
    ya, xa, ha, wa = anchor_boxes.T
    yc = codes[:, 0] / sy * ha + ya
    xc = codes[:, 1] / sx * wa + xa
    h = np.exp(codes[:, 2] / sh) * ha
    w = np.exp(codes[:, 3] / sw) * wa
    return np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], 1)


# -- the graph's own post-processing ---------------------------------------------------------------
# TF OD API `BatchMultiClassNonMaxSuppression` as OpenCV's `DetectionOutput` ran it: sigmoid scores,
# per class the best 100 above 0.01, NMS at IoU 0.6, the best 100 overall.
SCORE_FLOOR = 0.01
GRAPH_IOU = 0.6
PER_CLASS = 100
KEEP = 100


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def image_detections(
    codes: np.ndarray, logits: np.ndarray, anchor_boxes: np.ndarray, conf: float = SCORE_FLOOR
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's post-processing: box codes (A, 4) and class logits (A, classes, column 0 the
    background) -> (boxes as fractions of the image, scores, class ids) kept, best first. Only the
    (anchor, class) pairs above the score are turned into scores and boxes: the threshold is applied
    to the logits (sigmoid(x) >= t exactly when x >= log(t / (1 - t)))."""
    threshold = max(conf, SCORE_FLOOR)
    anchor, cls = np.nonzero(logits[:, 1:] >= math.log(threshold / (1.0 - threshold)))
    cls = cls + 1
    found = sigmoid(logits[anchor, cls])
    if len(found) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    # the best PER_CLASS of each class: sorted by class, then score, each row's rank in its class
    order = np.lexsort((-found, cls))
    anchor, cls, found = anchor[order], cls[order], found[order]
    _, first, counts = np.unique(cls, return_index=True, return_counts=True)
    rank = np.arange(len(cls)) - np.repeat(first, counts)
    top = rank < PER_CLASS
    anchor, cls, found = anchor[top], cls[top], found[top]
    boxes = decode_boxes(codes[anchor], anchor_boxes[anchor])
    keep = nms(boxes, found, cls, GRAPH_IOU, KEEP)
    return boxes[keep], found[keep], cls[keep]


@lru_cache(maxsize=4)
def default_anchors(input_size: int = INPUT_SIZE) -> np.ndarray:
    return anchors(AnchorConfig(), input_size)


def detections_of(
    outputs: tuple[np.ndarray, ...], conf: float = SCORE_FLOOR
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A batch's raw outputs (box codes (N, A, 4), class logits (N, A, classes)) -> each image's
    (boxes as fractions of the image, scores, class ids), as the graph keeps them (the record's
    `DetectorSpec.detections`: what `--engine auto` compares between engines)."""
    codes, logits = outputs[0], outputs[1]
    anchor_boxes = default_anchors()
    return [image_detections(c, lg, anchor_boxes, conf) for c, lg in zip(codes, logits, strict=True)]


# -- the frozen graph's constants -> this module's state_dict ---------------------------------------


def _folded(graph: Graph, scope: str) -> tuple[np.ndarray, np.ndarray]:
    """(torch weight, bias) of the TF convolution in `scope`, its batch norm folded in."""
    names = graph.constants
    if f"{scope}/depthwise_weights" in names:
        kernel = graph.constant(f"{scope}/depthwise_weights")  # (kh, kw, cin, multiplier)
        kh, kw, cin, mult = kernel.shape
        weight = kernel.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
    else:
        weight = graph.constant(f"{scope}/weights").transpose(3, 2, 0, 1)  # (kh, kw, cin, cout) -> OIHW
    cout = weight.shape[0]
    bn = f"{scope}/BatchNorm"
    if f"{bn}/moving_variance" not in names:
        bias = names.get(f"{scope}/biases", np.zeros(cout, np.float32))
        return np.ascontiguousarray(weight, np.float32), np.ascontiguousarray(bias, np.float32)
    eps = names.get(f"{bn}/batchnorm/add/y")
    eps_value = float(eps) if eps is not None and eps.size == 1 else BN_EPS
    gamma = names.get(f"{bn}/gamma", np.ones(cout, np.float32))
    scale = gamma / np.sqrt(graph.constant(f"{bn}/moving_variance") + eps_value)
    bias = names.get(f"{bn}/beta", np.zeros(cout, np.float32)) - graph.constant(f"{bn}/moving_mean") * scale
    folded = np.ascontiguousarray(weight * scale[:, None, None, None], dtype=np.float32)
    return folded, np.ascontiguousarray(bias, dtype=np.float32)


def _scopes() -> dict[str, str]:
    """This module's convolution prefixes -> the graph's scopes."""
    base = "FeatureExtractor/MobilenetV2"
    out = {"stem": f"{base}/Conv", "head": f"{base}/Conv_1"}
    for i, (expansion, _, _) in enumerate(BLOCKS):
        scope = f"{base}/expanded_conv" + (f"_{i}" if i else "")
        if expansion != 1:
            out[f"blocks.{i}.expand"] = f"{scope}/expand"
        out[f"blocks.{i}.depthwise"] = f"{scope}/depthwise"
        out[f"blocks.{i}.project"] = f"{scope}/project"
    for j, (mid, cout) in enumerate(EXTRA_LAYERS):
        n = j + 2
        out[f"extras.{j}.reduce"] = f"{base}/layer_19_1_Conv2d_{n}_1x1_{mid}"
        out[f"extras.{j}.depthwise"] = f"{base}/layer_19_2_Conv2d_{n}_3x3_s2_{cout}_depthwise"
        out[f"extras.{j}.pointwise"] = f"{base}/layer_19_2_Conv2d_{n}_3x3_s2_{cout}"
    return out


def state_from_graph(graph: Graph) -> dict[str, torch.Tensor]:
    """The state_dict of `SsdMobileNetV2` from the frozen graph's constants."""
    state: dict[str, torch.Tensor] = {}
    for prefix, scope in _scopes().items():
        weight, bias = _folded(graph, scope)
        state[f"{prefix}.conv.weight"] = torch.from_numpy(weight)
        state[f"{prefix}.conv.bias"] = torch.from_numpy(bias)
    for k in range(len(ANCHORS_PER_CELL)):
        for module, predictor in (("box_codes", "BoxEncodingPredictor"), ("class_logits", "ClassPredictor")):
            weight, bias = _folded(graph, f"BoxPredictor_{k}/{predictor}")
            state[f"{module}.{k}.weight"] = torch.from_numpy(weight)
            state[f"{module}.{k}.bias"] = torch.from_numpy(bias)
    return state


def read_graph_weights(path: Path, cache_dir: Path | None = None) -> dict[str, torch.Tensor]:
    """The torch state_dict of the frozen graph at `path`; converted once and kept as safetensors in
    `cache_dir` under the graph's sha256 (a changed graph has another digest, so it is converted again,
    never served stale; reading the 70 MB protobuf takes a few tenths of a second, the conversion
    0.15 s, reading it back about 7 ms)."""
    from safetensors.torch import load_file, save_file

    from pixelsift.core.hashing import remembered_sha256

    cached = None
    if cache_dir is not None:
        try:
            digest = remembered_sha256(path, cache_dir / "digests.json")
        except OSError as exc:
            raise WeightsInvalidError(f"{path}: cannot read ({exc.strerror or exc})") from None
        cached = cache_dir / f"ssd_mobilenet_v2-{digest}.safetensors"
        try:
            if cached.is_file():
                return dict(load_file(str(cached)))
        except OSError:  # a cache this user may not read (another user's home): convert in memory
            cached = None
        except Exception:  # a damaged conversion is made again from the graph
            with contextlib.suppress(OSError):
                cached.unlink()
    try:
        state = state_from_graph(read_graph(path))
    except WeightsInvalidError:
        raise
    except (ValueError, KeyError, IndexError) as exc:
        raise WeightsInvalidError(
            f"{path}: not an SSD-MobileNet-v2 graph of TensorFlow's detection zoo ({exc})"
        ) from None
    if cached is not None:
        partial = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save_file(state, str(partial))
            partial.replace(cached)
        except OSError:  # a read-only cache: convert again next time
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
    return state


def num_classes_of(state: dict[str, torch.Tensor]) -> int:
    """Classes (background included) of a converted graph: the first class predictor's outputs over its
    anchors per cell (91 for COCO)."""
    return int(state["class_logits.0.bias"].shape[0]) // ANCHORS_PER_CELL[0]
