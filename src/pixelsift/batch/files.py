"""Files by local path or by URI (`s3://bucket/key`, `gs://...`, `hdfs://...`, `file:///...`), through
pyarrow's filesystems: a batch job on a cluster often reads its photos from object storage.

    >>> read_bytes("s3://photos/2021/beach.jpg")[1:]        # doctest: +SKIP
    (2481923, 1625097600000000000)
"""

from __future__ import annotations

import os
from typing import Any

from pixelsift.config import get_settings
from pixelsift.core.optional import optional_import
from pixelsift.errors import ImageError, UsageError, short_reason
from pixelsift.imaging.images import HEIF_EXTENSIONS, IMAGE_EXTENSIONS, read_file


def is_uri(path: str) -> bool:
    return "://" in path


LOCAL_SCHEMES = ("file", "local")


def _filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's filesystem for `uri`, or `ImageError` saying why there is none (an unknown scheme,
    a filesystem pyarrow was built without, or the network while PIXELSIFT_OFFLINE is set)."""
    scheme = uri.split("://", 1)[0].lower()
    if get_settings().offline and scheme not in LOCAL_SCHEMES:
        raise ImageError(uri, "PIXELSIFT_OFFLINE is set: photos are not read over the network")
    pafs = optional_import("pyarrow.fs", "pyarrow", "parquet", "Reading photos by URI")
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:
        raise ImageError(uri, f"no filesystem for this URI here ({short_reason(exc)})") from None


def read_bytes(path: str) -> tuple[bytes, int, int]:
    """(bytes, size, mtime_ns) of a local file or a URI; `ImageError` saying why it cannot be read."""
    if not is_uri(path):
        return read_file(path)
    fs, inner = _filesystem(path)
    try:
        info = fs.get_file_info(inner)
        with fs.open_input_file(inner) as fh:
            data = fh.read()
    except (OSError, ValueError) as exc:
        raise ImageError(path, f"cannot read it ({exc})") from None
    mtime = info.mtime_ns if info.mtime_ns is not None else 0
    return bytes(data), int(info.size or len(data)), int(mtime)


def stat(path: str) -> tuple[int | None, int | None]:
    """(size, mtime_ns) of a local file or a URI, or (None, None) when it is not there."""
    try:
        if not is_uri(path):
            info = os.stat(path)
            return info.st_size, info.st_mtime_ns
        fs, inner = _filesystem(path)
        found = fs.get_file_info(inner)
        if found.type.name != "File":
            return None, None
        return int(found.size), int(found.mtime_ns or 0)
    except (OSError, ImageError):
        return None, None


def list_uri(uri: str) -> list[str]:
    """A URI of a file as itself; of a folder (prefix), every image file below it, as URIs. A URI that
    cannot be listed (no filesystem for it, offline, unreachable) is passed on as itself: reading it
    then gives its error row, and the rest of the job goes on."""
    try:
        fs, inner = _filesystem(uri)
    except ImageError:
        return [uri]
    pafs = optional_import("pyarrow.fs", "pyarrow", "parquet", "Reading photos by URI")
    try:
        info = fs.get_file_info(inner)
    except (OSError, ValueError):
        return [uri]
    scheme = uri.split("://", 1)[0]
    if info.type == pafs.FileType.File:
        return [uri]
    if info.type != pafs.FileType.Directory:
        raise UsageError(f"{uri}: no such file or folder")
    extensions = IMAGE_EXTENSIONS | HEIF_EXTENSIONS
    found = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
    names = (f.path for f in found if f.type == pafs.FileType.File)
    return sorted(
        f"{scheme}://{name}"
        for name in names
        if os.path.splitext(name)[1].lower() in extensions and not os.path.basename(name).startswith(".")
    )
