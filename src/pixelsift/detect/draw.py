"""Annotated copies of photos: a box and a "name score" label per object, one colour per class; for a
segmenter's objects, a translucent fill and an outline of each object's shape instead of its box, and
a legend of the classes shown.

Labels sit on a filled patch of the class colour with black or white text, whichever contrasts more,
so they read on any photo; boxes and labels are kept inside the image, whatever its size or mode.
The input image is never changed: drawing happens on an RGB copy.
"""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from pixelsift.detect.detections import Detections
from pixelsift.detect.masks import Masks
from pixelsift.imaging.fonts import label_font
from pixelsift.imaging.images import _to_rgb

GOLDEN_RATIO = 0.618033988749895
FILL_ALPHA = 0.4  # how much of a class colour a mask's fill lays over the photo
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


Rect = tuple[int, int, int, int]  # left, top, width, height


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def place_labels(
    anchors: list[tuple[int, int]],
    sizes: list[tuple[int, int]],
    width: int,
    height: int,
    reserved: list[Rect] | None = None,
) -> list[Rect]:
    """Where each label goes (in the order given, best detection first): above its box's top-left
    corner (`anchors`) when there is room, else just inside; then moved down, or up once the image
    ends, a label height at a time, until it covers no label placed before it (nor a `reserved`
    rectangle, such as the legend); always inside the image.

    >>> place_labels([(10, 50), (12, 52)], [(40, 12), (40, 12)], 200, 100)
    [(10, 38, 40, 12), (12, 52, 40, 12)]
    """
    placed: list[Rect] = list(reserved or [])
    for (x, y), (w, h) in zip(anchors, sizes, strict=True):
        left = max(0, min(x, width - w))
        first = y - h if y - h >= 0 else y
        first = max(0, min(first, height - h))
        candidates = [first + k * h for k in range(1, 60)] + [first - k * h for k in range(1, 60)]
        rect = (left, first, w, h)
        for top in candidates:
            if not any(_overlaps(rect, other) for other in placed):
                break
            if 0 <= top <= height - h:
                rect = (left, top, w, h)
        placed.append(rect)
    return placed[len(reserved or []) :]


def draw_detections(
    image: Image.Image,
    detections: Detections,
    line_width: int | None = None,
    font_size: int | None = None,
    scores: bool = True,
    legend: bool | None = None,
) -> Image.Image:
    """An RGB copy of `image` with each detection drawn: every box first (the best-scoring on top), then
    the labels, best first, each placed where it hides no other label (`place_labels`). Objects with
    masks get a translucent fill and an outline of their shape instead of a box, and a legend of the
    classes (`legend`: None draws one for masks only).

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
    font = label_font(font_size or max(10, round(side * 0.03)))
    pad = max(1, line)
    order = sorted(range(len(detections)), key=lambda i: -float(detections.scores[i]))
    # the masks over the canvas's pixels (they may have been made for a larger or smaller decode)
    masks = (
        None
        if detections.masks is None
        else detections.masks.scaled(width / detections.masks.size[0], height / detections.masks.size[1])
    )
    if masks is not None and len(masks):
        canvas = _fill_masks(canvas, masks, detections.class_ids, order)
    draw = ImageDraw.Draw(canvas)
    corners: list[tuple[int, int]] = []
    for index in reversed(order):  # the best box is drawn last, on top
        box = detections.boxes[index]
        x1 = min(max(round(float(box[0])), 0), width - 1)
        y1 = min(max(round(float(box[1])), 0), height - 1)
        x2 = min(max(round(float(box[2])), x1), width - 1)
        y2 = min(max(round(float(box[3])), y1), height - 1)
        colour = class_colour(int(detections.class_ids[index]))
        if masks is not None:
            _outline(draw, masks, index, colour, line)
        else:
            # PIL draws the outline inward from the rectangle's edge, so a clipped box stays inside.
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=min(line, max(1, (x2 - x1 + 1) // 2)))
        corners.append((x1, y1))
    corners.reverse()  # back to best first
    reserved: list[Rect] = []
    if (masks is not None if legend is None else legend) and len(detections):
        reserved.append(_draw_legend(draw, detections, font, pad, width))
    texts: list[str] = []
    sizes: list[tuple[int, int]] = []
    offsets: list[tuple[float, float]] = []
    for index in order:
        name, score = detections.class_names[index], float(detections.scores[index])
        text = f"{name} {score:.2f}" if scores else name
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        texts.append(text)
        sizes.append((min(round(right - left) + 2 * pad, width), round(bottom - top) + 2 * pad))
        offsets.append((left, top))
    for index, text, (x, y, w, h), (left, top) in zip(
        order, texts, place_labels(corners, sizes, width, height, reserved), offsets, strict=True
    ):
        colour = class_colour(int(detections.class_ids[index]))
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=colour)
        draw.text((x + pad - left, y + pad - top), text, fill=text_colour(colour), font=font)
    return canvas


def _fill_masks(canvas: Image.Image, masks: Masks, class_ids: np.ndarray, order: list[int]) -> Image.Image:
    """Each object's mask (over the canvas's pixels) laid over the photo in its class colour,
    `FILL_ALPHA` opaque, the best on top; one photo-sized mask at a time, so a big photo needs one
    mask's memory, not n."""
    pixels = np.asarray(canvas, dtype=np.uint8).copy()
    for index in reversed(order):
        inside = masks.mask(index)
        colour = np.array(class_colour(int(class_ids[index])), np.float32)
        blended = pixels[inside].astype(np.float32) * (1 - FILL_ALPHA) + colour * FILL_ALPHA
        pixels[inside] = np.round(blended).astype(np.uint8)
    return Image.fromarray(pixels)


def _outline(
    draw: ImageDraw.ImageDraw, masks: Masks, index: int, colour: tuple[int, int, int], line: int
) -> None:
    for polygon in masks.polygons(index):
        points = list(zip(polygon[0::2], polygon[1::2], strict=True))
        draw.line([*points, points[0]], fill=colour, width=line, joint="curve")


def _draw_legend(draw: ImageDraw.ImageDraw, detections: Detections, font: Any, pad: int, width: int) -> Rect:
    """A key in the top-right corner: a swatch of each class's colour, its name and how many; returns
    the rectangle it covers, which labels then avoid."""
    rows: list[tuple[tuple[int, int, int], str]] = []
    ids = {
        name: int(i) for i, name in zip(detections.class_ids[::-1], detections.class_names[::-1], strict=True)
    }
    for name, count in detections.counts():
        rows.append((class_colour(ids[name]), f"{name} {count}"))
    boxes = [draw.textbbox((0, 0), text, font=font) for _, text in rows]
    line_h = round(max(bottom - top for _, top, _, bottom in boxes)) + pad
    swatch = line_h - pad
    text_w = round(max(right - left for left, _, right, _ in boxes))
    legend_w = min(width, 3 * pad + swatch + text_w + pad)
    legend_h = pad + len(rows) * line_h
    x0 = max(0, width - legend_w)
    draw.rectangle((x0, 0, x0 + legend_w - 1, legend_h - 1), fill=WHITE, outline=BLACK)
    for row, ((colour, text), (left, top, _, _)) in enumerate(zip(rows, boxes, strict=True)):
        y = pad + row * line_h
        draw.rectangle((x0 + pad, y, x0 + pad + swatch - 1, y + swatch - 1), fill=colour, outline=BLACK)
        draw.text((x0 + 2 * pad + swatch - left, y - top), text, fill=BLACK, font=font)
    return (x0, 0, legend_w, legend_h)
