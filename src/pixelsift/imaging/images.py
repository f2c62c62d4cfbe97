"""Turning what a user points at (files, folders, globs, stdin) into RGB images, and reporting what fails.

`open_image` applies EXIF orientation, converts every Pillow mode to 8-bit RGB (alpha composited on
white), decodes large JPEGs in draft mode at the size the model needs, and raises `ImageError` with a
short reason for anything it cannot read. `expand_inputs` walks folders and globs lazily, so a folder of
a million photos streams in constant memory.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import io
import logging
import math
import os
import stat
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pixelsift.config import get_settings
from pixelsift.core.hashing import sha256_file
from pixelsift.errors import ImageError, PixelLimitError

log = logging.getLogger("pixelsift")

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


_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_turbo: object = None


def _simplejpeg() -> object:
    """simplejpeg (libjpeg-turbo) when installed, else False: Pillow decodes."""
    global _turbo
    if _turbo is None:
        try:
            import simplejpeg

            _turbo = simplejpeg
        except ImportError:
            _turbo = False
    return _turbo


def _turbo_decode(img: Image.Image, source: ImageSource) -> tuple[Image.Image, bool] | None:
    """An RGB JPEG decoded by libjpeg-turbo through simplejpeg, at the size Pillow's draft chose (so the
    pixels are Pillow's own, bit for bit; it skips Pillow's decoder plumbing and, for upright photos, a
    copy), EXIF orientation applied; (image, turned). None: let Pillow decode (not installed, CMYK, a
    file it cannot parse)."""
    turbo = _simplejpeg()
    if not turbo:
        return None
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()  # type: ignore[arg-type]
        width, height = img.size
        arr = turbo.decode_jpeg(data, "RGB", min_height=height, min_width=width)  # type: ignore[attr-defined]
    except (ValueError, OSError, TypeError):
        return None
    if arr.shape[:2] != (height, width):
        return None
    out = Image.fromarray(arr)
    orientation = img.getexif().get(_ORIENTATION, 1)
    if orientation in _TRANSPOSE:
        out = out.transpose(_TRANSPOSE[orientation])
    return out, orientation in (5, 6, 7, 8)


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


def silence_pillow_warnings() -> None:
    """Pillow's own warnings name no file ("Corrupt EXIF data...", "Image size exceeds limit"): the
    command line and the server leave them out; pixelsift reports each unusable image itself, with
    its path, and treats damaged metadata as missing."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


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


def _regular_file(path: str | os.PathLike[str], label: str) -> os.stat_result:
    """The stat of a regular file that is worth reading, else `ImageError` naming what it is: a folder, a
    FIFO (opening it would wait for a writer forever), a device (`/dev/zero` never ends), a socket, an
    empty file, or a file over the size one photo may have (the decode bound, PIXELSIFT_MAX_DECODE_MB)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise (_link_error(label, exc) if os.path.islink(path) else read_error(label, exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(label, "is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(label, f"{_special_kind(info.st_mode)}, not an image file")
    if info.st_size == 0:
        raise ImageError(label, "empty file (0 bytes)")
    limit = get_settings().max_decode_mb << 20
    if info.st_size > limit:
        raise PixelLimitError(
            label,
            f"{info.st_size / 2**20:.0f} MB is over the {limit >> 20} MB one photo may have "
            "(raise PIXELSIFT_MAX_DECODE_MB to allow it)",
        )
    return info


def read_file(path: str) -> tuple[bytes, int, int]:
    """(bytes, size, mtime_ns) of a file, or `ImageError` saying why it cannot be read (only regular
    files are read, and never more than the size bound of `_regular_file`)."""
    info = _regular_file(path, path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(info.st_size + 1)
    except OSError as exc:
        raise read_error(path, exc) from None
    if len(data) > info.st_size:  # it grew after the stat: not a photo that is finished being written
        raise ImageError(path, "the file is still being written (it grew while it was read)")
    return data, info.st_size, info.st_mtime_ns


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
                _regular_file(source, label)
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
            _check_decode_memory(img, label)
            fast = _turbo_decode(img, source) if img.format == "JPEG" and img.mode == "RGB" else None
            if fast is not None:
                rgb, turned = fast
            else:
                img.load()
                drafted = img.size
                ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of an upright photo
                rgb = _to_rgb(img)
                turned = img.size != drafted
            # The photo's size before draft decoding, oriented like the result: detectors report boxes in it.
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


# Bytes per pixel of Pillow's decoded modes (what `load` allocates); others count as 4.
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "La": 2, "PA": 2, "I;16": 2, "I;16B": 2, "I;16L": 2}
_MODE_BYTES |= {"RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3}


def decode_bytes(img: Image.Image) -> int:
    """Memory an image takes from `load` to an RGB copy (its decoded pixels, the RGB conversion and
    the EXIF rotation), at the size it will be decoded (after JPEG draft scaling)."""
    width, height = img.size
    return width * height * (_MODE_BYTES.get(img.mode, 4) + 3 + 3)


def _check_decode_memory(img: Image.Image, label: str) -> None:
    """Refuse, before decoding, an image whose pixels would take more memory than allowed: a 20 KB
    PNG can decode to gigabytes (a bound on pixels alone does not see 16-bit or RGBA modes)."""
    limit_mb = get_settings().max_decode_mb
    need = decode_bytes(img)
    if need > limit_mb * 2**20:
        width, height = img.size
        raise PixelLimitError(
            label,
            f"decoding {width}x{height} pixels (mode {img.mode}) would take {need / 2**20:.0f} MB, over the "
            f"limit of {limit_mb} MB (raise PIXELSIFT_MAX_DECODE_MB to allow it)",
        )


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def entry_is(entry: os.DirEntry[str], kind: str) -> bool:
    """Whether a folder entry is a folder (`kind` "dir") or a regular file ("file"), following links;
    False, never an error, for a link loop or an entry that vanished."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _link_error(path: str, exc: OSError) -> ImageError:
    if exc.errno == errno.ELOOP:
        return ImageError(path, "symbolic link loop (the link points, in the end, at itself)")
    if isinstance(exc, FileNotFoundError):
        return ImageError(path, "broken symbolic link (its target does not exist)")
    return read_error(path, exc)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk(
    folder: str, exclude: Sequence[str], extensions: frozenset[str] | None, follow_links: bool = True
) -> Iterator[str | ImageError]:
    """`iter_folder` on plain strings: a walk of a million files spends more on pathlib than on stat."""
    exts = extensions or image_extensions()
    prefix = len(folder.rstrip(os.sep)) + 1
    seen: set[tuple[int, int]] = set()  # (device, inode) of every folder walked
    root = os.path.realpath(folder)

    def leaves_root(entry: os.DirEntry[str]) -> str | None:
        """Where a link leads when that is outside the walked folder (None: inside, or links are followed)."""
        if follow_links:
            return None
        target = os.path.realpath(entry.path)
        return None if _inside(target, root) else target

    def excluded(path: str, name: str) -> bool:
        rel = path[prefix:].replace(os.sep, "/")
        return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(name, pat) for pat in exclude)

    def walk(directory: str) -> Iterator[str | ImageError]:
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in seen:
                return
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            yield read_error(directory, exc)
            return
        for entry in entries:
            name = entry.name
            if _is_hidden(name) or (exclude and excluded(entry.path, name)):
                continue
            is_image_name = os.path.splitext(name)[1].lower() in exts
            try:
                if not entry.is_symlink():  # the common case: the type comes with the listing, no stat
                    if entry.is_dir(follow_symlinks=False):
                        yield from walk(entry.path)
                        continue
                    if entry.is_file(follow_symlinks=False):
                        if is_image_name:
                            yield entry.path
                        continue
                outside = leaves_root(entry) if entry.is_symlink() else None
                if outside is not None:
                    yield ImageError(
                        entry.path,
                        f"a symbolic link out of the folder (to {outside}); not followed (--follow-links)",
                    )
                    continue
                mode = entry.stat().st_mode  # a link (followed), or a FIFO, socket or device
            except OSError as exc:
                # a link named like an image, or with no extension (it may have been a folder)
                if is_image_name or (entry.is_symlink() and not os.path.splitext(name)[1]):
                    yield _link_error(entry.path, exc) if entry.is_symlink() else read_error(entry.path, exc)
                continue
            if stat.S_ISDIR(mode):
                yield from walk(entry.path)
            elif is_image_name:
                if stat.S_ISREG(mode):
                    yield entry.path
                else:
                    yield ImageError(entry.path, f"{_special_kind(mode)}, not an image file")

    yield from walk(folder)


def iter_folder(
    folder: str | os.PathLike[str],
    exclude: Sequence[str] = (),
    extensions: frozenset[str] | None = None,
    follow_links: bool = True,
) -> Iterator[Path | ImageError]:
    """Image files under `folder`, recursively, in sorted order, skipping hidden files and folders; an
    `ImageError` in place of each entry that looks like an image but cannot be one (a broken or looping
    symbolic link, a FIFO, socket or device) and of each folder that cannot be listed. Never raises.

    `exclude` holds glob patterns matched against the path relative to `folder` and against the name.
    Symbolic links are followed, each folder at most once (a link back to a folder already walked is
    skipped), so a link loop cannot make the walk endless. With `follow_links=False` a link that leads
    out of `folder` is not followed: it is one `ImageError` naming where it leads (the photo library
    never leaves its folder).
    """
    for item in _walk(os.fspath(folder), exclude, extensions, follow_links):
        yield item if isinstance(item, ImageError) else Path(item)


def walk_image_paths(
    folder: str | os.PathLike[str],
    exclude: Sequence[str] = (),
    extensions: frozenset[str] | None = None,
    on_skip: Callable[[ImageError], None] | None = None,
    follow_links: bool = True,
) -> Iterator[str]:
    """The image files of `iter_folder`, as strings; each skipped entry goes to `on_skip` (default: a
    warning naming the path and the reason). Never raises."""
    for item in _walk(os.fspath(folder), exclude, extensions, follow_links):
        if isinstance(item, ImageError):
            if on_skip is not None:
                on_skip(item)
            else:
                log.warning("%s", item)
        else:
            yield item


def walk_images(
    folder: str | os.PathLike[str],
    exclude: Sequence[str] = (),
    extensions: frozenset[str] | None = None,
    on_skip: Callable[[ImageError], None] | None = None,
) -> Iterator[Path]:
    """`walk_image_paths` as `Path`s."""
    for path in walk_image_paths(folder, exclude, extensions, on_skip):
        yield Path(path)


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
            yield from iter_folder(path)
        elif path.exists() or path.is_symlink():
            yield path
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            if not matches:
                yield ImageError(text, "no files match this pattern")
            for match in matches:
                if os.path.isdir(match):
                    yield from iter_folder(match)
                else:
                    yield Path(match)
        else:
            yield ImageError(text, "no such file or folder")
