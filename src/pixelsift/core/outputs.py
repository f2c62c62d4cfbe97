"""Free file names for what pixelsift writes next to each other (annotated copies, explanations)."""

from __future__ import annotations

import os
from pathlib import Path

from pixelsift.errors import UsageError


class OutputNames:
    """Free file names in the --save folder: never an existing file, never one name twice in a run."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.taken: set[str] = set()

    @classmethod
    def make(cls, folder: str | os.PathLike[str], option: str = "--save") -> OutputNames:
        """The folder created (with its parents) when missing, before any work; a path that is a file,
        or a folder that cannot be created, is a `UsageError` naming `option`."""
        path = Path(folder).expanduser()
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path}: exists and is not a folder; give a folder for the new files")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{option} {path}: cannot create that folder ({exc.strerror or exc})") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: this user cannot write into that folder")
        return cls(path)

    def claim(self, stem: str, suffixes: tuple[str, ...]) -> str:
        """A stem such that stem + each suffix is new in the folder ("photo", "photo-1", ...)."""
        candidate, n = stem, 0
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
