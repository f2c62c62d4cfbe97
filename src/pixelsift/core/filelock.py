"""An exclusive lock held by one process at a time (`flock` on a small lock file).

The kernel drops the lock when its process ends, however it ends (kill -9 included), so a crashed
holder never leaves a stale lock behind. Where `fcntl` does not exist (Windows) the lock does nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pixelsift.errors import LibraryFileError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def exclusive_lock(
    path: str | os.PathLike[str], on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the lock at `path` for the block; when another process holds it, call `on_wait(holder)`
    (holder: what that process wrote in the file, e.g. its pid) once and wait for it."""
    if fcntl is None:
        yield
        return
    lock_path = Path(path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a folder in its place, no permission, a read-only disk
        what = "it is a folder" if lock_path.is_dir() else (exc.strerror or str(exc))
        raise LibraryFileError(
            f"cannot take the lock {lock_path}: {what}; remove it (pixelsift keeps an empty file there) "
            "or make its folder writable"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(_holder(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    except OSError:
        return "another process"
