"""Where pixelsift writes: output files and folders checked before any work, and free file names for
what it writes next to each other (annotated copies, explanations)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from pixelsift.errors import PixelsiftError, UsageError


def writable_folder(folder: str | os.PathLike[str], option: str) -> Path:
    """`folder`, created (with its parents) when missing; a path that is a file, or a folder that cannot
    be created or written, is a `UsageError` naming `option`."""
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder; give a folder for the new files")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create that folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: this user cannot write into that folder")
    return path


def output_file(path: str | os.PathLike[str], option: str = "-o") -> Path:
    """An output file checked before any work: not a folder, not a device or a pipe (`-o /dev/full`), in
    a folder this user can write (created when missing). Its content is written later, under a
    temporary name, then renamed."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(f"{option} {target}: is a folder; give a file name inside it or beside it")
    if target.exists() and not target.is_file():
        raise UsageError(f"{option} {target}: not a regular file (a device or a pipe); give a file name")
    writable_folder(target.parent, option)
    return target


def current_umask() -> int:
    """This process's umask, read without changing it (Linux's /proc), else set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_new_file(path: str | os.PathLike[str]) -> None:
    """Give a file written under a private temporary name (mkstemp makes it 0600) the permissions any
    new file gets here, 0666 less the umask: a model file others on the machine may read."""
    os.chmod(path, 0o666 & ~current_umask())


def write_atomically(target: Path, write: Callable[[Path], object], what: str) -> Path:
    """`write(tmp)` to a temporary name beside `target`, then rename it to `target`: readers see the
    whole file or none of it. A failed write (a full disk, a folder that became unwritable) removes the
    temporary file and is one `PixelsiftError` naming the file."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise PixelsiftError(f"{target}: cannot write {what} ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return target


class OutputNames:
    """Free file names in the --save folder: never an existing file, never one name twice in a run."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.taken: set[str] = set()

    @classmethod
    def make(cls, folder: str | os.PathLike[str], option: str = "--save") -> OutputNames:
        """The folder created (with its parents) when missing, before any work; a path that is a file,
        or a folder that cannot be created, is a `UsageError` naming `option`."""
        return cls(writable_folder(folder, option))

    def claim(self, stem: str, suffixes: tuple[str, ...], first: int = 1) -> str:
        """A stem such that stem + each suffix is new in the folder ("photo", then "photo-1", ... from
        `first`)."""
        candidate, n = stem, first - 1
        while any(
            (candidate + s) in self.taken or (self.folder / (candidate + s)).exists() for s in suffixes
        ):
            n += 1
            candidate = f"{stem}-{n}"
        self.taken.update(candidate + s for s in suffixes)
        return candidate

    def image_path(self, source: str) -> Path:
        src = Path(source)
        suffix = ".jpg" if src.suffix.lower() in (".jpg", ".jpeg") else ".png"
        return self.folder / (self.claim(src.stem or "image", (suffix,)) + suffix)
