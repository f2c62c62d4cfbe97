"""The picture of an explanation: the heatmap over the photo (jet colours, warm where the network
looked), the hottest region boxed, the class and score in the corner and a colour scale at the side.
The photo itself is never changed."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pixelsift.core.optional import optional_import
from pixelsift.detect.draw import text_colour
from pixelsift.imaging.fonts import label_font

ALPHA = 0.5


def _jet(values: np.ndarray) -> np.ndarray:
    """(...,) in [0, 1] -> (..., 3) uint8 in matplotlib's "jet" colours."""
    matplotlib = optional_import("matplotlib", "matplotlib", "explain", "Drawing explanations")
    return (matplotlib.colormaps["jet"](np.clip(values, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def overlay(
    image: Image.Image,
    heat: np.ndarray,
    caption: str,
    box: tuple[int, int, int, int] | None = None,
    seen: tuple[int, int, int, int] | None = None,
) -> Image.Image:
    """An RGB copy of `image` with `heat` (same height x width, in [0, 1]) blended over the region the
    network saw (`seen`, x1, y1, x2, y2; default the whole image): outside it, the photo is dimmed."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    colours = _jet(heat).astype(np.float32)
    height, width = heat.shape
    x1, y1, x2, y2 = seen or (0, 0, width, height)
    inside = np.zeros((height, width), bool)
    inside[y1:y2, x1:x2] = True
    alpha = np.where(inside, ALPHA, 0.0)[..., None]
    base = np.where(inside[..., None], base, base * 0.55)  # the crop the network did not see
    blended = Image.fromarray((base * (1 - alpha) + colours * alpha).round().astype(np.uint8), "RGB")
    width, height = blended.size
    side = (width + height) / 2
    font = label_font(max(11, round(side * 0.035)))
    draw = ImageDraw.Draw(blended)
    line = max(2, round(side * 0.005))
    if box is not None:
        draw.rectangle(box, outline=(255, 255, 255), width=line)
    # colour scale, right edge: high at the top
    bar_w = max(8, round(width * 0.025))
    bar_h = max(20, round(height * 0.5))
    top = (height - bar_h) // 2
    scale = _jet(np.linspace(1.0, 0.0, bar_h))[:, None, :].repeat(bar_w, axis=1)
    blended.paste(Image.fromarray(scale, "RGB"), (width - bar_w - line, top))
    draw.rectangle((width - bar_w - line, top, width - line - 1, top + bar_h - 1), outline=(255, 255, 255))
    # caption, top left, on a patch so it reads on any photo
    left, t, right, bottom = draw.textbbox((0, 0), caption, font=font)
    pad = line * 2
    patch = (0, 0, min(width, right - left + 2 * pad), bottom - t + 2 * pad)
    draw.rectangle(patch, fill=(20, 20, 20))
    draw.text((pad - left, pad - t), caption, fill=text_colour((20, 20, 20)), font=font)
    return blended
