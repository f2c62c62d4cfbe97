"""What a measurement made on this machine depends on (its CPU, the versions of the libraries whose
kernels run), and writing what was measured so that a reader never sees half a file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

MEASURED_LIBRARIES = ("pixelsift", "torch", "onnxruntime", "openvino", "numpy", "pillow", "rapidocr")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str]:
    """Versions of every library whose kernels could change a measurement."""
    out = {"python": sys.version.split()[0]}
    for dist in MEASURED_LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def write_json(path: Path, data: Any) -> None:
    """`data` as JSON at `path`, written beside it and renamed into place (all or nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, path)
