"""Runs torchvision's COCO detectors and Mask R-CNN
(records in `pixelsift.models.families.torchvision_detectors`).

The networks resize and normalise inside themselves; pixelsift only hands them RGB tensors in [0, 1]
(the weights' own `transforms()`), each at its own size: a batch is a list of images, which torchvision
pads into one forward pass (8 per pass on a GPU; on a CPU one per pass, in several streams).

Mask R-CNN's masks come out of the network as 28x28 probabilities per box; torchvision would paste
every candidate's at the photo's full size. pixelsift pastes only the objects kept after the score
filter and NMS, with torchvision's own `paste_masks_in_image`, at the size the network saw the photo
(its 800-pixel side), so a big photo's masks stay small (`pixelsift.detect.masks.Masks`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelsift.core.boxes import nms
from pixelsift.detect.detections import Detections
from pixelsift.detect.detector import Detector
from pixelsift.detect.masks import Masks
from pixelsift.errors import UsageError
from pixelsift.models.categories import BACKGROUND, UNUSED
from pixelsift.models.families.torchvision_common import default_weights
from pixelsift.models.records import DetectorSpec, SegmenterSpec
from pixelsift.models.weights import load_network
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner


def tensor_outputs(network: Any) -> Any:
    """The adapter between torchvision's detection API and the runner, in one place: torchvision
    detectors take a list of CHW images and return a list of dicts; the runner passes a batch (a
    tensor, or a list of tensors of different sizes) and wants tensors back: every image's boxes,
    scores and labels one after the other, and how many belong to each image."""
    import torch
    from torch import nn

    class TensorOutputs(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            outs = self.net(list(x))
            counts = torch.tensor([len(o["boxes"]) for o in outs])
            joined = [torch.cat([o[k] for o in outs]) for k in ("boxes", "scores", "labels")]
            return (*joined, counts)

    return TensorOutputs(network)


def mask_outputs(network: Any) -> Any:
    """Like `tensor_outputs` for Mask R-CNN, with each object's 28x28 mask probabilities unpasted and
    the size each image was resized to inside the network (where they are pasted later)."""
    import torch
    from torch import nn
    from torchvision.models.detection.transform import resize_boxes

    class MaskOutputs(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            net: Any = self.net
            originals = [(int(img.shape[-2]), int(img.shape[-1])) for img in x]
            images, _ = net.transform(list(x))
            features = net.backbone(images.tensors)
            proposals, _ = net.rpn(images, features)
            outs, _ = net.roi_heads(features, proposals, images.image_sizes)
            boxes = [
                resize_boxes(o["boxes"], resized, original)
                for o, resized, original in zip(outs, images.image_sizes, originals, strict=True)
            ]
            counts = torch.tensor([len(o["boxes"]) for o in outs])
            sizes = torch.tensor([list(size) for size in images.image_sizes])
            joined = [
                torch.cat(boxes),
                *(torch.cat([o[k] for o in outs]) for k in ("scores", "labels", "masks")),
            ]
            return (*joined, counts, sizes)

    return MaskOutputs(network)


def set_thresholds(network: Any, conf: float, iou: float) -> None:
    """Make the network's own score filter and NMS use `conf` and `iou` (Faster R-CNN keeps them in
    its ROI heads, RetinaNet, FCOS and SSD on the model)."""
    owner = getattr(network, "roi_heads", network)
    for attr, value in (("score_thresh", conf), ("nms_thresh", iou)):
        if hasattr(owner, attr):
            setattr(owner, attr, value)


class TorchvisionDetector(Detector):
    """Each photo keeps its own shape: a batch is a list, which the network pads into one pass."""

    def __init__(self, spec: DetectorSpec, runner: Any, transform: Any, **kwargs: Any):
        super().__init__(
            spec,
            spec.categories,
            # a GPU wants batches; on a CPU, streams of one image each keep every core busy
            batch_size=1 if runner.device.type == "cpu" else 8,
            decode_size=spec.imgsz,
            runs_on=runner.describe(),
            **kwargs,
        )
        self.runner = runner
        self.transform = transform
        # COCO's ten unused ids ("N/A") and the background are no class: a box of one (weak weights,
        # a fine-tuned head) is dropped instead of being reported or indexed as "N/A"
        self.is_class = np.array([name not in (UNUSED, BACKGROUND) for name in spec.categories], bool)

    def kept(self, scores: np.ndarray, labels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Indices of the boxes that survive the score threshold, the class check and NMS."""
        known = (labels >= 0) & (labels < len(self.is_class))
        known[known] = self.is_class[labels[known]]
        keep = np.flatnonzero((scores >= self.conf) & known)
        return keep[nms(boxes[keep], scores[keep], labels[keep], self.iou, self.max_det, self.agnostic)]

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        return self.transform(image).numpy(), None

    def infer(self, pixels: np.ndarray | list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        boxes, scores, labels, counts = self.runner(list(pixels))
        ends = np.cumsum(counts.astype(np.int64))
        starts = ends - counts.astype(np.int64)
        return [(boxes[a:b], scores[a:b], labels[a:b]) for a, b in zip(starts, ends, strict=True)]

    def postprocess(self, raw: tuple[np.ndarray, ...], meta: Any, size: tuple[int, int]) -> Detections:
        boxes, scores, labels = raw
        labels = labels.astype(np.int64)
        kept = self.kept(scores, labels, boxes)
        return Detections.from_arrays(boxes[kept], scores[kept], labels[kept], self.categories)


class MaskRCNNSegmenter(TorchvisionDetector):
    """Mask R-CNN: boxes as the other torchvision detectors, and each kept object's mask."""

    def infer(self, pixels: np.ndarray | list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        boxes, scores, labels, masks, counts, sizes = self.runner(list(pixels))
        ends = np.cumsum(counts.astype(np.int64))
        starts = ends - counts.astype(np.int64)
        return [
            (boxes[a:b], scores[a:b], labels[a:b], masks[a:b], sizes[i])
            for i, (a, b) in enumerate(zip(starts, ends, strict=True))
        ]

    def postprocess(self, raw: tuple[np.ndarray, ...], meta: Any, size: tuple[int, int]) -> Detections:
        import torch
        from torchvision.models.detection.roi_heads import paste_masks_in_image

        boxes, scores, labels, masks, (resized_h, resized_w) = raw
        labels = labels.astype(np.int64)
        kept = self.kept(scores, labels, boxes)
        width, height = size
        # the size the network saw the photo at, or the photo's own when that is smaller
        mask_w, mask_h = (int(resized_w), int(resized_h)) if resized_w < width else (width, height)
        scale = np.array([mask_w / width, mask_h / height] * 2, np.float32)
        pasted = paste_masks_in_image(
            torch.from_numpy(np.ascontiguousarray(masks[kept], dtype=np.float32)),
            torch.from_numpy(boxes[kept] * scale),
            (mask_h, mask_w),
        )
        data = (pasted[:, 0] > 0.5).numpy() if len(kept) else np.zeros((0, mask_h, mask_w), bool)
        return Detections.from_arrays(
            boxes[kept], scores[kept], labels[kept], self.categories, Masks(data, (width, height))
        )


def load(
    spec: DetectorSpec,
    run_options: RunOptions,
    conf: float = 0.25,
    iou: float = 0.45,
    imgsz: int | None = None,
) -> TorchvisionDetector:
    if imgsz is not None:
        raise UsageError(f"{spec.name} sets its own input size; imgsz applies to YOLO and ONNX models")
    network = load_network(spec)
    set_thresholds(network, conf, iou)
    segments = isinstance(spec, SegmenterSpec)
    # FrozenBatchNorm and data-dependent control flow: nothing for torch.fx to fold here.
    wrapped = mask_outputs(network) if segments else tensor_outputs(network)
    runner = ModelRunner(wrapped, run_options, fold_bn=False)
    transform = default_weights(spec.name).transforms()
    kind = MaskRCNNSegmenter if segments else TorchvisionDetector
    return kind(spec, runner, transform, conf=conf, iou=iou, run_options=run_options)
