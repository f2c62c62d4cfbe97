"""Free file names for what pixelsift writes next to each other (annotated copies, explanations)."""

from __future__ import annotations

from pathlib import Path


class OutputNames:
    """Free file names in the --save folder: never an existing file, never one name twice in a run."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.taken: set[str] = set()

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
