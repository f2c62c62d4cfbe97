"""Optional packages, imported only by the code that needs them (never at `import pixelsift`).

A missing one is a `MissingDependencyError` that names the pixelsift extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from pixelsift.errors import MissingDependencyError


def optional_import(module: str, package: str, extra: str, purpose: str) -> ModuleType:
    """`importlib.import_module(module)`, or the error that says `pip install 'pixelsift[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, extra, purpose) from None


def is_installed(module: str) -> bool:
    """Whether `module` could be imported, without importing it (importing some takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# What reads TensorFlow .pb graphs in OpenCV: version 4 (OpenCV 5 removed its TensorFlow importer).
OPENCV_4 = "pip install 'opencv-python-headless>=4.8,<5'"


def import_cv2() -> ModuleType:
    return optional_import("cv2", "opencv-python-headless", "opencv", "OpenCV DNN detection and video")


def module_providers(module: str) -> dict[str, str]:
    """Installed distribution -> version, for every distribution that writes top-level `module`
    (`cv2` is written by opencv-python, opencv-python-headless and the contrib builds alike: two of
    them installed means the one installed last wins, file by file)."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.packages_distributions().get(module, []):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return dict(sorted(found.items()))


def major_version(version: str) -> int | None:
    """The leading number of a version string ("5.1.0.95" -> 5), or None when there is none."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None
