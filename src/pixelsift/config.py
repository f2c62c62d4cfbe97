"""One Settings object: where pixelsift keeps its files, whether it may use the network, and on what it runs.

Every value comes from an environment variable when set, so tests, notebooks and servers configure
pixelsift the same way:

    PIXELSIFT_HOME       cache and data folder (default: the user's cache dir, e.g. ~/.cache/pixelsift)
    PIXELSIFT_OFFLINE    1 = never download anything
    PIXELSIFT_DEVICE     auto | cpu | cuda | cuda:N | mps
    PIXELSIFT_PRECISION  auto | fp32 | bf16 | fp16
    PIXELSIFT_THREADS    compute threads (default: the CPUs this process may use)
    PIXELSIFT_MAX_PIXELS largest image accepted, in pixels (decompression-bomb guard)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ENGINES = ("torch", "onnxruntime")
DEVICES_HELP = "auto | cpu | cuda | cuda:N | mps"


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

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        settings = cls()
        if env.get("PIXELSIFT_HOME"):
            settings.home = Path(env["PIXELSIFT_HOME"]).expanduser()
        settings.offline = env.get("PIXELSIFT_OFFLINE", "").strip().lower() in _TRUE
        settings.device = env.get("PIXELSIFT_DEVICE", settings.device)
        settings.precision = env.get("PIXELSIFT_PRECISION", settings.precision)
        if env.get("PIXELSIFT_THREADS"):
            settings.threads = int(env["PIXELSIFT_THREADS"])
        if env.get("PIXELSIFT_MAX_PIXELS"):
            settings.max_pixels = int(env["PIXELSIFT_MAX_PIXELS"])
        return settings

    @property
    def weights_dir(self) -> Path:
        return self.home / "weights"

    @property
    def features_dir(self) -> Path:
        return self.home / "features"


def get_settings() -> Settings:
    """Current settings, read from the environment on every call so a change to os.environ takes effect."""
    return Settings.from_env()
