"""The font of the labels pixelsift draws on photos (boxes, lines of text read, explanations)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import ImageFont

# Fonts with accents and most scripts' letters, where the system has them (Pillow's own font has
# ASCII only: "Café" would be drawn with a box for "é").
_UNICODE_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",  # Fedora
    "/Library/Fonts/Arial Unicode.ttf",  # macOS
    "C:/Windows/Fonts/arial.ttf",
)


@lru_cache(maxsize=32)
def label_font(size: int) -> Any:
    """A scalable font of `size` pixels: a system font with accents when there is one, else Pillow's."""
    for path in _UNICODE_FONTS:
        if Path(path).is_file():
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()
