"""The web app's only door to photo files: ids from the index, resolved inside the library root.

A request never names a path. An id that is not a number, not in the index, recorded as failed, or
whose file resolves (through symlinks) outside the library root is answered 404, so `../`, encoded
and double-encoded traversal and symlinks out of the library all get nothing.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any

from pixelsift.config import get_settings
from pixelsift.core.hashing import short_digest
from pixelsift.errors import ApiError, ImageError, UsageError
from pixelsift.imaging.images import open_image
from pixelsift.library import PhotoIndex


class LibraryAccess:
    def __init__(self, db: Path | None):
        self.db = db
        self.lock = threading.RLock()  # one SQLite connection, shared by the server's worker threads
        self._index: Any = None

    def index(self) -> Any:
        if self._index is None:
            if self.db is None:
                raise ApiError(
                    503,
                    "no photo index is loaded: start `pixelsift serve --db FILE` "
                    "(make one with `pixelsift index PHOTOS_DIR`)",
                )
            self._index = PhotoIndex(self.db, create=False)
        return self._index

    def _record(self, photo_id: str) -> dict[str, Any]:
        if not (photo_id.isascii() and photo_id.isdigit()) or len(photo_id) > 18:  # not "²" nor "١"
            raise ApiError(404, "no such photo")
        try:
            info: dict[str, Any] = self.index().photo(int(photo_id))
        except UsageError:
            raise ApiError(404, "no such photo") from None
        if info.get("status") != "ok":
            raise ApiError(404, "no such photo")
        return info

    def resolve_inside(self, relative: str) -> Path | None:
        """The real path of a library-relative path, or None when it resolves outside the root."""
        root = os.path.realpath(self.index().root)
        real = os.path.realpath(os.path.join(root, relative))
        if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
            return None
        return Path(real)

    def info(self, photo_id: str) -> dict[str, Any]:
        """The index's record of a photo that may be served (a link out of the library may not)."""
        info = self._record(photo_id)
        if self.resolve_inside(info["path"]) is None:
            raise ApiError(404, "no such photo")
        return info

    def photo_file(self, photo_id: str) -> Path:
        """The real path of a recorded photo, checked to lie inside the library root."""
        path = self.resolve_inside(self._record(photo_id)["path"])
        if path is None:
            raise ApiError(404, "no such photo")
        return path

    def servable(self, results: Any) -> list[Any]:
        """Search results without photos whose files are gone or lie outside the library."""
        return [r for r in results if self.resolve_inside(r.relative_path) is not None]

    def thumbnail(self, photo_id: str, size: int = 320) -> bytes:
        info = self.info(photo_id)
        path = self.photo_file(photo_id)
        key = (info.get("sha256") or str(info.get("mtime_ns")))[:16]
        cache = get_settings().home / "thumbnails" / _library_key(self.db) / f"{int(photo_id)}-{key}.jpg"
        if cache.is_file():
            return cache.read_bytes()

        try:
            image = open_image(path, min_size=size)
        except ImageError as exc:
            raise ApiError(404, f"photo cannot be read: {exc.reason}") from None
        image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        data = buffer.getvalue()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(data)
        os.replace(tmp, cache)
        return data


def _library_key(db: Path | None) -> str:
    return short_digest(str(Path(db or "").resolve()))
