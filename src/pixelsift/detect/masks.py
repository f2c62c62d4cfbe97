"""Instance masks: the shape of each detected object, kept small and scaled to the photo on demand.

`Masks` holds one boolean mask per object, `(n, h, w)`, at the resolution the segmenter worked at
(Mask R-CNN's resized input, YOLO's letterboxed input without its padding), covering the whole photo
of `size` (width, height). A 40-megapixel photo's masks therefore take what the network's input
takes, not 40 MB each; `full()` gives supervision's `(n, H, W)` array in photo pixels when asked,
and `rle()` and `polygons()` scale one instance at a time.

RLE is COCO's compressed run-length encoding (column-major, counts as pycocotools' string), so
`pycocotools.mask.decode` reads what `rle()` writes and `rle_decode` reads what pycocotools writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelsift.core.optional import optional_import

POLYGON_EPSILON = 0.5  # pixels (of the traced grid) a simplified outline may stray
TRACE_SCALE = 4  # outlines are traced on the mask enlarged this many times


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """A 2-D boolean mask -> COCO compressed RLE `{"size": [h, w], "counts": str}` (pycocotools' format).

    >>> rle_encode(np.array([[0, 1], [1, 1]], bool))
    {'size': [2, 2], 'counts': '101'}
    """
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    flat = mask.ravel(order="F")
    counts = _run_lengths(flat)
    return {"size": [int(height), int(width)], "counts": _counts_to_string(counts)}


def _run_lengths(flat: np.ndarray) -> list[int]:
    """Lengths of alternating runs, starting with a run of zeros (possibly empty)."""
    if flat.size == 0:
        return [0]
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(edges).tolist()
    return [0, *runs] if flat[0] else runs


def _counts_to_string(counts: list[int]) -> str:
    """pycocotools' `rleToString`: each count (minus the one two before it, from the third on) as
    5-bit groups, low first, with a continuation bit, offset into printable ASCII from '0'."""
    out: list[str] = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _string_to_counts(text: str) -> list[int]:
    """pycocotools' `rleFrString`."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = 0
        k = 0
        more = True
        while more:
            if pos >= len(text):
                raise ValueError("RLE counts string ends inside a number")
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (compressed string or a list of counts) -> a 2-D boolean mask."""
    height, width = (int(v) for v in rle["size"])
    raw = rle["counts"]
    counts = (
        _string_to_counts(raw.decode() if isinstance(raw, bytes) else raw)
        if isinstance(raw, str | bytes)
        else [int(c) for c in raw]
    )
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        raise ValueError(f"RLE counts cover {sum(counts)} pixels, not {height}x{width}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T.copy()


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """One boolean mask at another resolution: bilinear on 0/1, then > 0.5 (smooth edges, no blocks)."""
    cv2 = optional_import("cv2", "opencv-python-headless", "opencv", "instance masks")
    if mask.shape == (height, width):
        return np.asarray(mask, dtype=bool)
    scaled = cv2.resize(mask.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(scaled > 127)


@dataclass
class Masks:
    """One boolean mask per object, `data` `(n, h, w)`, covering an image of `size` (width, height).

    >>> m = Masks(np.zeros((1, 4, 4), bool), (8, 8))
    >>> m.data[0, :2, :2] = True
    >>> float(m.areas()[0]), m.full().shape
    (0.25, (1, 8, 8))
    """

    data: np.ndarray
    size: tuple[int, int]

    def __post_init__(self) -> None:
        data = np.asarray(self.data, dtype=bool)
        if data.ndim != 3:
            raise ValueError(f"masks must have shape (n, h, w), not {data.shape}")
        self.data = data
        self.size = (int(self.size[0]), int(self.size[1]))

    @classmethod
    def empty(cls, size: tuple[int, int], shape: tuple[int, int] = (1, 1)) -> Masks:
        return cls(np.zeros((0, *shape), bool), size)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> Masks:
        return Masks(self.data[index], self.size)

    @property
    def resolution(self) -> tuple[int, int]:
        """The masks' own (width, height)."""
        return int(self.data.shape[2]), int(self.data.shape[1])

    def scaled(self, sx: float, sy: float) -> Masks:
        """The same masks over an image `sx` by `sy` times as large (nothing is resampled)."""
        return Masks(self.data, (round(self.size[0] * sx), round(self.size[1] * sy)))

    def areas(self) -> np.ndarray:
        """Each object's area as a fraction of the image (independent of the masks' resolution)."""
        if not len(self):
            return np.zeros(0, np.float32)
        return self.data.reshape(len(self), -1).mean(axis=1).astype(np.float32)

    def pixel_areas(self) -> np.ndarray:
        """Each object's area in photo pixels."""
        return self.areas() * float(self.size[0] * self.size[1])

    def mask(self, index: int) -> np.ndarray:
        """One object's mask `(H, W)` in photo pixels."""
        width, height = self.size
        return resize_mask(self.data[index], width, height)

    def iter_full(self) -> Iterator[np.ndarray]:
        """Each object's `(H, W)` mask in photo pixels, one at a time (bounded memory)."""
        for index in range(len(self)):
            yield self.mask(index)

    def full(self) -> np.ndarray:
        """supervision's `(n, H, W)` boolean array in photo pixels (n full-size masks: mind big photos)."""
        width, height = self.size
        out = np.zeros((len(self), height, width), dtype=bool)
        for index, mask in enumerate(self.iter_full()):
            out[index] = mask
        return out

    def rle(self, index: int) -> dict[str, Any]:
        """One object's mask in photo pixels as COCO compressed RLE."""
        return rle_encode(self.mask(index))

    def polygons(self, index: int) -> list[list[float]]:
        """One object's outline(s) in photo pixels: COCO's `[x1, y1, x2, y2, ...]` per outer contour,
        largest first. Traced on the mask smoothly enlarged `TRACE_SCALE` times (at most to the photo's
        size), so the outline follows the mask's edge rather than its border pixels' centres."""
        cv2 = optional_import("cv2", "opencv-python-headless", "opencv", "instance masks")
        (width, height), (mw, mh) = self.size, self.resolution
        tw, th = min(width, mw * TRACE_SCALE), min(height, mh * TRACE_SCALE)
        mask = np.ascontiguousarray(resize_mask(self.data[index], tw, th), dtype=np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        scale = np.array([width / tw, height / th], np.float64)
        out: list[tuple[float, list[float]]] = []
        for contour in contours:
            points = cv2.approxPolyDP(contour, POLYGON_EPSILON, True).reshape(-1, 2)
            if len(points) < 3:
                continue
            # pixel centres of the mask's grid, in the photo's pixels
            xy = (points.astype(np.float64) + 0.5) * scale
            out.append((float(cv2.contourArea(contour)), [round(float(v), 1) for v in xy.ravel()]))
        out.sort(key=lambda item: -item[0])
        return [polygon for _, polygon in out]

    def label_image(self, scores: np.ndarray | None = None) -> np.ndarray:
        """`(H, W)` uint16 in photo pixels: 0 for no object, i + 1 where object i is; where objects
        overlap, the best-scoring one (`scores`, default: the order given) wins."""
        width, height = self.size
        out = np.zeros((height, width), dtype=np.uint16)
        order = np.arange(len(self)) if scores is None else np.argsort(-np.asarray(scores), kind="stable")
        for index in order[::-1]:  # the best is written last, on top
            out[self.mask(int(index))] = index + 1
        return out
