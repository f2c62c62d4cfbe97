"""What `pixelsift serve` was started with: the index, limits, default models and the run options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.options import RunOptions

DEFAULT_MAX_UPLOAD_MB = 25.0
# The names this machine answers to on its loopback interface: the Host a browser sends for a local page.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class WebConfig:
    db: Path | None = None
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    max_pixels: int | None = None
    cors_origins: list[str] = field(default_factory=list)
    # Host names a request may be addressed to (its Host header); anything else gets 421, so a web
    # page on a rebinding domain cannot read the library. Empty: any (a server bound to 0.0.0.0).
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    port: int | None = None  # the port it serves on: a Host or Origin naming another port is refused
    model: str = DEFAULT_CLASSIFIER
    detector: str | None = None
    # classifiers run on its engine (torch or onnxruntime); detectors run in torch or OpenCV DNN
    run_options: RunOptions = field(default_factory=RunOptions)
    # `serve --index FOLDER`: the folder whose index (`db`) the server keeps current in the background
    index_folder: Path | None = None
