"""One Settings object: where pixelsift keeps its files, whether it may use the network, and on what it runs.

Every value comes from an environment variable when set, so tests, notebooks and servers configure
pixelsift the same way:

    PIXELSIFT_HOME       cache and data folder (default: the user's cache dir, e.g. ~/.cache/pixelsift)
    PIXELSIFT_OFFLINE    1 = never download anything
    PIXELSIFT_DEVICE     auto | cpu | cuda | cuda:N | mps
    PIXELSIFT_PRECISION  auto | fp32 | bf16 | fp16
    PIXELSIFT_THREADS    compute threads (default: the CPUs this process may use)
    PIXELSIFT_MAX_PIXELS largest image accepted, in pixels (decompression-bomb guard)
    PIXELSIFT_MAX_DECODE_MB  memory one decoded image may take, in MB (default 512)

A value that cannot be used is a `UsageError` naming the variable and what it accepts (exit code 2).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelsift.errors import UsageError

_TRUE = {"1", "true", "yes", "on"}

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ENGINES = ("torch", "onnxruntime")
DEVICES_HELP = "auto | cpu | cuda | cuda:N | mps"
_DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?|mps)")


def _default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("pixelsift"))


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset / container CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass
class Settings:
    home: Path = field(default_factory=_default_home)
    offline: bool = False
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    max_pixels: int = 178_956_970  # twice Pillow's warning level: a 13000 x 13000 photo still opens

    max_decode_mb: int = 512  # memory one decoded image may take (bands x width x height), in MB

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        settings = cls()
        if env.get("PIXELSIFT_HOME"):
            settings.home = Path(env["PIXELSIFT_HOME"]).expanduser()
        settings.offline = env.get("PIXELSIFT_OFFLINE", "").strip().lower() in _TRUE
        device = env.get("PIXELSIFT_DEVICE", "").strip().lower()
        if device:
            if not _DEVICE.fullmatch(device):
                raise UsageError(f"PIXELSIFT_DEVICE={env['PIXELSIFT_DEVICE']!r}: use one of {DEVICES_HELP}")
            settings.device = device
        precision = env.get("PIXELSIFT_PRECISION", "").strip().lower()
        if precision:
            if precision not in PRECISIONS:
                raise UsageError(
                    f"PIXELSIFT_PRECISION={env['PIXELSIFT_PRECISION']!r}: use one of {', '.join(PRECISIONS)}"
                )
            settings.precision = precision
        settings.threads = _positive_int(env, "PIXELSIFT_THREADS", settings.threads, "compute threads", 4)
        settings.max_pixels = _positive_int(
            env, "PIXELSIFT_MAX_PIXELS", settings.max_pixels, "pixels", 250_000_000
        )
        settings.max_decode_mb = _positive_int(
            env, "PIXELSIFT_MAX_DECODE_MB", settings.max_decode_mb, "megabytes", 2048
        )
        return settings

    @property
    def weights_dir(self) -> Path:
        return self.home / "weights"

    @property
    def features_dir(self) -> Path:
        return self.home / "features"


def _positive_int(env: os._Environ[str], name: str, default: int | None, what: str, example: int) -> Any:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(
            f"{name}={env[name]!r}: use a whole number of {what}, at least 1 (e.g. {name}={example})"
        )
    return value


def get_settings() -> Settings:
    """Current settings, read from the environment on every call so a change to os.environ takes effect."""
    return Settings.from_env()
