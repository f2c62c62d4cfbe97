"""What `pixelsift serve` was started with: the index, limits, default models and the run options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.options import RunOptions

DEFAULT_MAX_UPLOAD_MB = 25.0


@dataclass
class WebConfig:
    db: Path | None = None
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    max_pixels: int | None = None
    cors_origins: list[str] = field(default_factory=list)
    model: str = DEFAULT_CLASSIFIER
    detector: str | None = None
    # classifiers run on its engine (torch or onnxruntime); detectors run in torch or OpenCV DNN
    run_options: RunOptions = field(default_factory=RunOptions)
