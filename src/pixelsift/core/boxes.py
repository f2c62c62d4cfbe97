"""Box maths shared by the detectors and by the engine check of detectors: overlap and per-class
non-maximum suppression, on corner boxes (x1, y1, x2, y2)."""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of corner boxes."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou: float,
    max_det: int,
    agnostic: bool = False,
) -> np.ndarray:
    """Indices kept by per-class non-maximum suppression, best score first, at most `max_det`.

    `agnostic`: boxes of different classes suppress each other too (ultralytics' `agnostic_nms`), so one
    dog is one box, not "dog, cow, zebra"."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    if agnostic:
        class_ids = np.zeros(len(boxes), np.int64)
    # imported here: torchvision takes seconds to import on a small CPU, and only detection needs it
    import torch
    from torchvision.ops import batched_nms

    keep = batched_nms(
        torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(class_ids, dtype=np.int64)),
        iou,
    )
    return keep[:max_det].numpy()
