"""Annotated copies of photos: a box and a "name score" label per object, one colour per class.

Labels sit on a filled patch of the class colour with black or white text, whichever contrasts more,
so they read on any photo; boxes and labels are kept inside the image, whatever its size or mode.
The input image is never changed: drawing happens on an RGB copy.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from pixelsift.detect.detections import Detections
from pixelsift.imaging.images import _to_rgb

GOLDEN_RATIO = 0.618033988749895
BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A saturated colour per class id; consecutive ids are far apart on the hue circle."""
    hue = (class_id * GOLDEN_RATIO) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return round(r * 255), round(g * 255), round(b * 255)


def _luminance(rgb: tuple[int, int, int]) -> float:
    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever has the higher WCAG contrast ratio on `background`."""
    lum = _luminance(background)
    return BLACK if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else WHITE


@lru_cache(maxsize=32)
def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def draw_detections(
    image: Image.Image,
    detections: Detections,
    line_width: int | None = None,
    font_size: int | None = None,
    scores: bool = True,
) -> Image.Image:
    """An RGB copy of `image` with each detection drawn (best-scoring on top).

    Line width and text size follow the image size (set them to override).

    >>> from pixelsift.detect import Detections
    >>> dets = Detections([[4, 4, 40, 30]], [0.9], [0], ["person"])
    >>> draw_detections(Image.new("L", (64, 48)), dets).mode
    'RGB'
    """
    canvas = _to_rgb(image).copy() if image.mode != "RGB" else image.copy()
    width, height = canvas.size
    side = (width + height) / 2
    line = line_width or max(1, round(side * 0.004))
    font = _font(font_size or max(10, round(side * 0.03)))
    pad = max(1, line)
    draw = ImageDraw.Draw(canvas)
    for index in reversed(range(len(detections))):
        box, score = detections.boxes[index], float(detections.scores[index])
        class_id, name = int(detections.class_ids[index]), detections.class_names[index]
        x1 = min(max(round(float(box[0])), 0), width - 1)
        y1 = min(max(round(float(box[1])), 0), height - 1)
        x2 = min(max(round(float(box[2])), x1), width - 1)
        y2 = min(max(round(float(box[3])), y1), height - 1)
        colour = class_colour(class_id)
        # PIL draws the outline inward from the rectangle's edge, so a clipped box stays inside.
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=min(line, max(1, (x2 - x1 + 1) // 2)))
        label = f"{name} {score:.2f}" if scores else name
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        label_w, label_h = right - left + 2 * pad, bottom - top + 2 * pad
        # Above the box when there is room, else just inside its top edge; shifted left to fit.
        label_y = y1 - label_h if y1 - label_h >= 0 else y1
        label_y = max(0, min(label_y, height - label_h))
        label_x = max(0, min(x1, width - label_w))
        draw.rectangle((label_x, label_y, label_x + label_w - 1, label_y + label_h - 1), fill=colour)
        draw.text((label_x + pad - left, label_y + pad - top), label, fill=text_colour(colour), font=font)
    return canvas
