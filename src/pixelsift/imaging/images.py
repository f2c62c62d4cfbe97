"""Turning what a user points at (files, folders, globs, stdin) into RGB images, and reporting what fails.

`open_image` applies EXIF orientation, converts every Pillow mode to 8-bit RGB (alpha composited on
white), decodes large JPEGs in draft mode at the size the model needs, and raises `ImageError` with a
short reason for anything it cannot read. `expand_inputs` walks folders and globs lazily, so a folder of
a million photos streams in constant memory.
"""

from __future__ import annotations

import fnmatch
import glob
import io
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pixelsift.config import get_settings
from pixelsift.core.hashing import sha256_file
from pixelsift.errors import ImageError, PixelLimitError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".avif"})
_GLOB_CHARS = set("*?[")
_heif_checked = False

ImageSource = str | os.PathLike[str] | bytes | BinaryIO


def _register_heif() -> bool:
    """Teach Pillow HEIC/AVIF when pillow-heif is installed (checked once)."""
    global _heif_checked
    if not _heif_checked:
        _heif_checked = True
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:
            pass
    return "HEIF" in Image.registered_extensions().values()


def image_extensions() -> frozenset[str]:
    """Extensions a folder walk picks up: the usual ones, plus HEIC/AVIF when pillow-heif is installed."""
    return IMAGE_EXTENSIONS | HEIF_EXTENSIONS if _register_heif() else IMAGE_EXTENSIONS


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited on white so it does not turn black."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = (
            65535.0 if img.mode.startswith("I") and arr.max(initial=0) > 255 else max(arr.max(initial=1), 1.0)
        )
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def read_error(path: str | os.PathLike[str], exc: OSError) -> ImageError:
    """The one wording of "this file cannot be read" for every reader of user files."""
    label = os.fspath(path)
    if isinstance(exc, FileNotFoundError):
        return ImageError(label, "no such file")
    if isinstance(exc, PermissionError):
        return ImageError(label, "permission denied")
    if isinstance(exc, IsADirectoryError):
        return ImageError(label, "is a folder, not an image file")
    return ImageError(label, f"cannot read the file ({exc.strerror or exc})")


def read_file(path: str) -> tuple[bytes, int, int]:
    """(bytes, size, mtime_ns) of a file, or `ImageError` saying why it cannot be read."""
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            return fh.read(), stat.st_size, stat.st_mtime_ns
    except OSError as exc:
        raise read_error(path, exc) from None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes; an unreadable file raises `ImageError` (same reasons as `open_image`)."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise read_error(path, exc) from None


def open_image(
    source: ImageSource,
    *,
    min_size: int | None = None,
    fit: int | None = None,
    max_pixels: int | None = None,
    name: str | None = None,
) -> Image.Image:
    """Open an image as an EXIF-oriented RGB `PIL.Image`, or raise `ImageError` saying why not.

    `min_size`: the smallest side the caller needs; JPEGs larger than that are decoded in draft
    mode (DCT scaling), which is several times faster on 12-megapixel photos; the photo's own
    (oriented) size stays in `image.info["full_size"]`. `fit`: instead, the caller shrinks the image to
    fit a `fit` x `fit` square (letterboxing), so only its longer side must stay at least `fit`.

    >>> open_image("samples/chelsea.png").size
    (451, 300)
    """
    label = name or (str(source) if isinstance(source, str | os.PathLike) else "<image bytes>")
    limit = max_pixels or get_settings().max_pixels
    _register_heif()
    try:
        if isinstance(source, bytes):
            if not source:
                raise ImageError(label, "empty file (0 bytes)")
            fp: str | os.PathLike[str] | BinaryIO = io.BytesIO(source)
        else:
            fp = source
            if isinstance(source, str | os.PathLike):
                if os.path.isdir(source):
                    raise ImageError(label, "is a folder, not an image file")
                if os.path.getsize(source) == 0:
                    raise ImageError(label, "empty file (0 bytes)")
        with Image.open(fp) as img:
            width, height = img.size
            if width * height > limit:
                raise PixelLimitError(
                    label,
                    f"{width}x{height} pixels is over the limit of {limit} "
                    "(decompression-bomb guard; raise PIXELSIFT_MAX_PIXELS to allow it)",
                )
            if fit and img.format == "JPEG" and max(width, height) > 2 * fit:
                scale = fit / max(width, height)
                img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            elif min_size and img.format == "JPEG" and min(width, height) > 2 * min_size:
                img.draft("RGB", (min_size, min_size))
            img.load()
            oriented = ImageOps.exif_transpose(img)
            rgb = _to_rgb(oriented)
            # The photo's size before draft decoding, oriented like the result: detectors report boxes in it.
            turned = oriented.size != img.size
            rgb.info["full_size"] = (height, width) if turned else (width, height)
            return rgb
    except ImageError:
        raise
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise read_error(label, exc) from None
    except UnidentifiedImageError:
        raise ImageError(label, "not an image (Pillow does not recognise the format)") from None
    except Image.DecompressionBombError as exc:
        raise PixelLimitError(label, f"decompression-bomb guard: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(label, f"corrupt or truncated image ({exc})") from None


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def walk_images(
    folder: str | os.PathLike[str], exclude: Sequence[str] = (), extensions: frozenset[str] | None = None
) -> Iterator[Path]:
    """Image files under `folder`, recursively, in sorted order, skipping hidden files and folders.

    `exclude` holds glob patterns matched against the path relative to `folder` and against the name.
    Folder symlinks are not followed (no loops, no escaping the folder); file symlinks are.
    """
    exts = extensions or image_extensions()
    root = Path(folder)

    def excluded(path: Path) -> bool:
        rel = path.relative_to(root).as_posix()
        return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(path.name, pat) for pat in exclude)

    def walk(directory: Path) -> Iterator[Path]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            path = Path(entry.path)
            if exclude and excluded(path):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from walk(path)
            elif os.path.splitext(entry.name)[1].lower() in exts and entry.is_file():
                yield path

    yield from walk(root)


def expand_inputs(
    inputs: Iterable[str | os.PathLike[str] | ImageError], stdin: Iterable[str] | None = None
) -> Iterator[Path | ImageError]:
    """Expand files, folders (recursive), glob patterns and "-" (paths on stdin) into image paths.

    Yields an `ImageError` in place of an input that names nothing (and passes `ImageError` items
    through), so the caller can report it and go on. A file named explicitly is always passed on,
    whatever its extension.
    """
    for item in inputs:
        if isinstance(item, ImageError):
            yield item
            continue
        text = os.fspath(item)
        if text == "-":
            lines = stdin if stdin is not None else sys.stdin
            for line in lines:
                line = line.strip()
                if line:
                    yield from expand_inputs([line])
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            yield from walk_images(path)
        elif path.exists() or path.is_symlink():
            yield path
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            if not matches:
                yield ImageError(text, "no files match this pattern")
            for match in matches:
                if os.path.isdir(match):
                    yield from walk_images(match)
                else:
                    yield Path(match)
        else:
            yield ImageError(text, "no such file or folder")
