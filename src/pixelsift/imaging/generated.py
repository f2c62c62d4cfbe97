"""A generated data set that is hard enough to teach with: `make_hard_dataset`.

The shapes set (`datasets.make_shapes_dataset`) is solved by every classifier from one photo per
class. This one has what real photos have: classes that differ only in proportion (a circle and an
ellipse, a square and a rectangle, a pentagon and a hexagon), textured objects on textured
backgrounds, clutter (smaller shapes of every class around the one that names the photo), occlusion,
blur and JPEG artefacts. Colour and texture carry no class information. Classifiers make real
mistakes on it, differ from each other, and improve with more training photos.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

HARD_CLASSES = ("circle", "ellipse", "square", "rectangle", "pentagon", "hexagon")
# A stretched class is drawn this many times longer than wide; its look-alike is drawn 1:1.
STRETCH = (1.5, 2.0)


def _outline(shape: str, cx: float, cy: float, radius: float, angle: float, stretch: float) -> list:
    """Polygon points of `shape` centred at (cx, cy); circles and ellipses as 64-gons."""
    corners = {"pentagon": 5, "hexagon": 6, "square": 4, "rectangle": 4}.get(shape, 64)
    phase = np.pi / 4 if corners == 4 else 0.0
    t = phase + 2 * np.pi * np.arange(corners) / corners
    x, y = np.cos(t) * radius, np.sin(t) * radius
    if shape in ("ellipse", "rectangle"):
        x, y = x * np.sqrt(stretch), y / np.sqrt(stretch)  # same area as its look-alike
    c, s = np.cos(angle), np.sin(angle)
    return [(float(cx + c * a - s * b), float(cy + s * a + c * b)) for a, b in zip(x, y, strict=True)]


def _texture(rng: np.random.Generator, size: int, solid: float = 0.0) -> np.ndarray:
    """(size, size, 3) float pixels: one colour (with probability `solid`), else noise, stripes,
    checks or smooth blobs in two random colours; all with some grain."""
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(4)
    mix: np.ndarray
    if rng.random() < solid:
        mix = np.ones((size, size), np.float32)
    elif kind == 0:
        mix = rng.random((size, size))
    elif kind == 1:
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
        mix = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    elif kind == 2:
        cell = int(rng.integers(6, 20))
        mix = ((xx // cell + yy // cell) % 2).astype(np.float32)
    else:
        small = rng.random((6, 6))
        index = (np.arange(size) * 6 // size).astype(int)
        mix = small[np.ix_(index, index)]
    pixels = a * mix[..., None] + b * (1 - mix[..., None])
    return np.asarray(pixels + rng.normal(0, 12, pixels.shape), np.float32)


def _paint(canvas: np.ndarray, mask: Any, texture: np.ndarray) -> None:
    inside = np.asarray(mask, bool)
    canvas[inside] = texture[inside]


def make_hard_dataset(
    root: str | os.PathLike[str],
    classes: tuple[str, ...] = HARD_CLASSES,
    train_per_class: int = 40,
    valid_per_class: int = 20,
    size: int = 192,
    clutter: tuple[int, int] = (1, 3),
    occlusion: float = 0.25,
    seed: int = 0,
) -> Path:
    """Write a labelled data set (ROOT/train/<class>/, ROOT/valid/<class>/) of hard generated photos.

    `classes`: any of circle, ellipse, square, rectangle, pentagon, hexagon (the default: all six,
    three pairs of look-alikes). Each photo shows one large shape of its class, textured, on a textured
    background, among `clutter` smaller shapes of any class, partly covered by a patch (up to
    `occlusion` of its bounding box), sometimes blurred. `objects.json` at the root records each
    photo's main shape (class and x1, y1, x2, y2 in pixels, by relative path).

    >>> make_hard_dataset("hard/", train_per_class=20)        # doctest: +SKIP
    PosixPath('hard')
    """
    from PIL import Image, ImageDraw, ImageFilter

    unknown = [c for c in classes if c not in HARD_CLASSES]
    if unknown or len(set(classes)) < 2:
        raise ValueError(f"classes must be two or more of {', '.join(HARD_CLASSES)}, not {classes!r}")
    rng = np.random.default_rng(seed)
    base = Path(root)
    objects: dict[str, Any] = {}
    for split, count in (("train", train_per_class), ("valid", valid_per_class)):
        for name in classes:
            folder = base / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                canvas = _texture(rng, size)
                for _ in range(int(rng.integers(clutter[0], clutter[1] + 1))):
                    other = str(rng.choice(HARD_CLASSES))
                    r = rng.uniform(0.04, 0.08) * size
                    mask = Image.new("L", (size, size))
                    x, y = rng.uniform(r, size - r, 2)
                    points = _outline(other, x, y, r, rng.uniform(0, np.pi), rng.uniform(*STRETCH))
                    ImageDraw.Draw(mask).polygon(points, fill=255)
                    _paint(canvas, mask, _texture(rng, size, solid=0.5))
                radius = rng.uniform(0.25, 0.36) * size
                cx, cy = rng.uniform(radius, size - radius, 2)
                mask = Image.new("L", (size, size))
                points = _outline(name, cx, cy, radius, rng.uniform(0, np.pi), rng.uniform(*STRETCH))
                ImageDraw.Draw(mask).polygon(points, fill=255)
                _paint(canvas, mask, _texture(rng, size, solid=0.5))
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                box = [min(xs), min(ys), max(xs), max(ys)]
                if rng.random() < 0.8:  # a patch of another texture over part of the shape
                    w, h = (box[2] - box[0]), (box[3] - box[1])
                    side = np.sqrt(rng.uniform(0.05, occlusion) * w * h)
                    x0, y0 = (
                        rng.uniform(box[0] - side / 2, box[2] - side / 2),
                        rng.uniform(box[1] - side / 2, box[3] - side / 2),
                    )
                    patch = Image.new("L", (size, size))
                    ImageDraw.Draw(patch).rectangle([x0, y0, x0 + side, y0 + side], fill=255)
                    _paint(canvas, patch, _texture(rng, size))
                img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")
                if rng.random() < 0.3:
                    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
                relative = f"{split}/{name}/{name}_{i:03d}.jpg"
                img.save(base / relative, quality=int(rng.integers(60, 95)))
                objects[relative] = {"class": name, "box": [round(float(v), 1) for v in box]}
    (base / "objects.json").write_text(json.dumps(objects, indent=1))
    return base
