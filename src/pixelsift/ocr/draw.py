"""The text read in a photo, drawn on it: each line's outline and, above it, what was read."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from pixelsift.imaging.fonts import label_font
from pixelsift.ocr.results import TextLine

OUTLINE = (255, 196, 0)
LABEL_BACKGROUND = (20, 20, 20)


def draw_text_lines(image: Image.Image, lines: Sequence[TextLine]) -> Image.Image:
    """A copy of `image` (RGB) with each line's four-cornered outline and its text; coordinates are
    the lines' own (the photo's full-size pixels), scaled to `image` when it is smaller."""
    out = image.convert("RGB").copy()
    full_width = out.info.get("full_size", out.size)[0] or out.width
    scale = out.width / full_width
    draw = ImageDraw.Draw(out)
    width = max(2, round(min(out.size) / 300))
    font = label_font(max(12, round(min(out.size) / 40)))
    for line in lines:
        points = [(x * scale, y * scale) for x, y in line.quad]
        draw.polygon(points, outline=OUTLINE, width=width)
        x1, y1 = min(p[0] for p in points), min(p[1] for p in points)
        left, top, right, bottom = draw.textbbox((x1, y1), line.text, font=font)
        shift = bottom - top + 2 * width
        y = y1 - shift if y1 - shift >= 0 else y1
        box = (left - width, y - width, right + width, y + (bottom - top) + width)
        draw.rectangle(box, fill=LABEL_BACKGROUND)
        draw.text((x1, y - (top - y1)), line.text, fill=OUTLINE, font=font)
    return out
