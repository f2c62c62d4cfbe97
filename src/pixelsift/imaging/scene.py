"""The scene around the objects: sky, grass, trees, road, from colour, texture and place in the photo.

Neither ImageNet nor COCO has a class for these regions, and no scene or segmentation model installs
offline (see the README, "Scene regions"), yet people search with them: "grass", "a bird on the grass",
"a car on the road". Each region here is a rule on a small copy of the photo (`SIDE` pixels on its
longer side), in HSV with a local texture measure (the mean Sobel gradient of brightness):

- **sky**: smooth pixels, blue (hue 185-255, some saturation) or bright and colourless (overcast),
  joined to the top edge; its share of the upper half of the photo.
- **grass**: green (hue 60-170, saturation over 0.18), not rough but never flat (each pixel differs
  from a neighbour); its share of the lower 45%.
- **tree**: green-to-olive, darker and rough pixels (foliage) in the upper 60%, less what a photo
  filled with grass would give there.
- **road**: neutral grey (channels within 0.09, not bluish: water reflects the sky), not rough,
  joined to the bottom edge and not to the top (a grey sky or wall behind a subject is not a road);
  its share of the lower 35%.

A region of one flat colour (the fill of a drawing, a screenshot or a generated image) is none of
these. A region's share becomes a probability by a Platt fit, sigmoid(a * share + b), on every other
photo of the development library's searchlib set (rows 0, 2, 4 ... of its labels.csv, which
`benchmarks/bench_search.py` also uses); the other half was kept out of the fit to check it (the README
gives both). Sky and grass are reliable; tree and road much less, and their probabilities run high
(about half of the photos they put at 0.5 or more show the region), so as context they only rank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

SIDE = 64  # the longer side of the copy the rules look at (pixels)
SOURCE = "scene"  # the labels' source in the index (no labeler may take this name)
SHOWN = 0.5  # a region this probable is named among a search result's labels
FLAT = 0.004  # a region whose colour varies less than this (standard deviation, 0-1) is a flat fill
_EPS = np.float32(np.finfo(np.float32).eps)  # as OpenCV's RGB2HSV guards its divisions


@dataclass(frozen=True)
class SceneRegion:
    """One region the rules find, with the Platt fit that turns its share into a probability."""

    name: str  # the label it is stored and searched under
    a: float
    b: float

    def probability(self, share: float) -> float:
        """The fit's probability above what it gives a photo without the region (the fit's base rate is
        the development library's, not the user's): 0 for no share, close to the fit's own near 1."""
        fitted = 1.0 / (1.0 + np.exp(-(self.a * share + self.b)))
        floor = 1.0 / (1.0 + np.exp(-self.b))
        return float(max(0.0, (fitted - floor) / (1.0 - floor)))


# Fitted on half of searchlib's photos (see the module docstring).
REGIONS = (
    SceneRegion("sky", 9.66, -1.95),
    SceneRegion("grass", 8.64, -2.55),
    SceneRegion("tree", 6.01, -1.91),
    SceneRegion("road", 4.02, -1.32),
)


def small_copy(image: Any) -> np.ndarray:
    """The photo (a PIL image) as float32 RGB in [0, 1], `SIDE` pixels on its longer side."""
    from PIL import Image

    small = image.convert("RGB")
    small.thumbnail((SIDE, SIDE), Image.Resampling.BILINEAR)  # a copy: the caller's image is untouched
    return np.asarray(small, np.float32) / 255.0


def _joined_to(mask: np.ndarray, edge: int, not_edge: int | None = None) -> np.ndarray:
    """The pixels of `mask` whose 4-connected region touches row `edge` (0 or -1), and not `not_edge`."""
    from scipy import ndimage  # scikit-learn's own dependency

    regions, count = ndimage.label(mask)  # 4-connected: the default structure is a cross
    keep = np.zeros(count + 1, bool)
    keep[regions[edge]] = True
    if not_edge is not None:
        keep[regions[not_edge]] = False
    keep[0] = False  # outside the mask
    return keep[regions]


def _share(mask: np.ndarray) -> float:
    return np.count_nonzero(mask) / mask.size if mask.size else 0.0


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation and value of float RGB in [0, 1], as OpenCV's RGB2HSV computes them."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    spread = v - np.minimum(np.minimum(r, g), b)
    s = spread / (v + _EPS)
    k = np.float32(60.0) / (spread + _EPS)
    h = np.where(v == r, (g - b) * k, np.where(v == g, (b - r) * k + 120, (r - g) * k + 240))
    return np.where(h < 0, h + 360, h).astype(np.float32), s, v


def _reflected(plane: np.ndarray) -> np.ndarray:
    """One pixel of border mirrored without its edge (OpenCV's default border, BORDER_REFLECT_101)."""
    rows = np.concatenate([plane[1:2], plane, plane[-2:-1]], axis=0)  # np.pad(mode="reflect"), faster
    return np.concatenate([rows[:, 1:2], rows, rows[:, -2:-1]], axis=1)


def _sobel(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 Sobel derivatives across and down (of each channel, for a colour image)."""
    p = _reflected(plane)
    left, right = p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2], p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]
    up, down = p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:], p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]
    return right - left, down - up


def _box3(plane: np.ndarray) -> np.ndarray:
    """The mean of each pixel's 3x3 neighbourhood."""
    p = _reflected(plane)
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / np.float32(9.0)


def region_shares(rgb: np.ndarray) -> dict[str, float]:
    """Each region's share of the part of the photo where it is looked for (see the module docstring).
    A few dozen numpy operations on a 64-pixel copy (OpenCV is optional in pixelsift)."""
    rgb = np.ascontiguousarray(rgb, np.float32)
    if rgb.ndim != 3 or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        return {region.name: 0.0 for region in REGIONS}
    h, s, v = _hsv(rgb)
    gx, gy = _sobel(v)
    texture = _box3(np.sqrt(gx * gx + gy * gy))
    n = v.shape[0]
    centres = (np.arange(n) + 0.5) / n

    def first(fraction: float) -> int:  # rows whose centre is above `fraction` of the height
        return int(np.count_nonzero(centres < fraction))

    def after(fraction: float) -> int:  # the first row whose centre is below it
        return n - int(np.count_nonzero(centres > fraction))

    smooth = texture < 0.12
    blue = (h > 185) & (h < 255) & (s > 0.12) & (v > 0.35)
    overcast = (s < 0.14) & (v > 0.72)
    sky = _joined_to((blue | overcast) & smooth, 0)

    green = (h > 60) & (h < 170) & (s > 0.18) & (v > 0.12)
    grass = green & (texture < 0.6) & _varying(rgb)  # every blade differs from the next: no flat fill

    foliage = (h > 40) & (h < 170) & (s > 0.15) & (v > 0.04) & (v < 0.5) & (texture > 0.2)
    top = first(0.6)
    tree = _share(foliage[:top]) - 0.5 * _share(grass[after(0.6) :]) * _share(green[:top])

    spread = s * v  # max - min of the channels
    bluish = rgb[..., 2] - rgb[..., 0]
    grey = (spread < 0.09) & (bluish < 0.02) & (v > 0.15) & (v < 0.75) & (texture < 0.25)
    road = _joined_to(grey, -1, 0)

    return {
        "sky": 0.0 if _flat(sky, rgb) else _share(sky[: first(0.5)]),
        "grass": _share(grass[after(0.55) :]),
        "tree": float(max(0.0, tree)),
        "road": 0.0 if _flat(road, rgb) else _share(road[after(0.65) :]),
    }


def _varying(rgb: np.ndarray) -> np.ndarray:
    """The pixels whose colour differs from a neighbour's (by a level of 255 or more)."""
    across, down = _sobel(rgb)
    change = np.abs(across) + np.abs(down)
    most = np.maximum(np.maximum(change[..., 0], change[..., 1]), change[..., 2])
    return most > 0.002


def _flat(mask: np.ndarray, rgb: np.ndarray) -> bool:
    """Whether a region is one flat colour (a drawing's or a screenshot's fill, not a sky or a lawn:
    those vary by a few levels at least, through light, noise and compression)."""
    return bool(mask.any()) and float(rgb[mask].std(axis=0).max()) < FLAT


def scene_labels(rgb: np.ndarray) -> list[tuple[str, float]]:
    """(region, probability) for every region, as the index stores them (all of them, so a photo with
    none of the regions is known to have been looked at)."""
    shares = region_shares(rgb)
    return _in_order({region.name: region.probability(shares[region.name]) for region in REGIONS})


def stored_labels(probabilities: Mapping[str, Any]) -> list[tuple[str, float]] | None:
    """Region probabilities (a batch job's `scene` column, or the rules') as the index stores them:
    every region of `REGIONS` in its order, rounded to 4 digits; None when one of them is missing (a
    job from a version with other regions)."""
    if any(probabilities.get(region.name) is None for region in REGIONS):
        return None
    return _in_order(probabilities)


def _in_order(probabilities: Mapping[str, Any]) -> list[tuple[str, float]]:
    return [(region.name, round(float(probabilities[region.name]), 4)) for region in REGIONS]
