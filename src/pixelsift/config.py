"""One Settings object: where pixelsift keeps its files, whether it may use the network, and on what it runs.

Every value comes from an environment variable when set, so tests, notebooks and servers configure
pixelsift the same way:

    PIXELSIFT_HOME       cache and data folder (default: the user's cache dir, e.g. ~/.cache/pixelsift)
    PIXELSIFT_OFFLINE    1 = never download anything
    PIXELSIFT_DEVICE     auto | cpu | cuda | cuda:N | mps
    PIXELSIFT_PRECISION  auto | fp32 | bf16 | fp16 | int8
    PIXELSIFT_ENGINE     auto | torch | onnxruntime | openvino (default auto: measured once per model)
    PIXELSIFT_THREADS    compute threads (default: the CPUs this process may use)
    PIXELSIFT_MAX_PIXELS largest image accepted, in pixels (decompression-bomb guard)
    PIXELSIFT_MAX_DECODE_MB  memory one decoded image may take, in MB (default 512)

A value that cannot be used is a `UsageError` naming the variable and what it accepts (exit code 2).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelsift.errors import UsageError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# What each variable accepts, for the message when it is set but empty.
ACCEPTS = {
    "PIXELSIFT_HOME": "a folder",
    "PIXELSIFT_OFFLINE": "1 or 0",
    "PIXELSIFT_DEVICE": "auto | cpu | cuda | cuda:N | mps",
    "PIXELSIFT_PRECISION": "auto, fp32, bf16, fp16 or int8",
    "PIXELSIFT_ENGINE": "auto, torch, onnxruntime or openvino",
    "PIXELSIFT_THREADS": "a whole number of compute threads",
    "PIXELSIFT_MAX_PIXELS": "a whole number of pixels",
    "PIXELSIFT_MAX_DECODE_MB": "a whole number of megabytes",
}

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
ENGINES = ("auto", "torch", "onnxruntime", "openvino")
DEVICES_HELP = "auto | cpu | cuda | cuda:N | mps"
_DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?|mps)")


def _default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("pixelsift"))


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")


def cgroup_cpu_limit(cpu_max: Path = CGROUP_CPU_MAX, v1_quota: Path = CGROUP_V1_QUOTA) -> int | None:
    """The CPUs a container's CPU quota allows (a quota of 1.5 CPUs gives 2), or None without one."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(v1_quota.read_text())
        period_us = int(v1_quota.with_name("cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask (taskset, container CPU sets), further limited
    by a container's CPU quota (docker --cpus, Kubernetes limits)."""
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        cpus = max(1, os.cpu_count() or 1)
    quota = cgroup_cpu_limit()
    return min(cpus, quota) if quota else cpus


# Bounds on the counts a user gives (options, environment, Python keywords): more threads than this many
# per CPU only slows a run down (--threads 64 on 2 CPUs took 34 s and 3.2 GB for one photo), and
# thousands of them exhaust the machine (libgomp "Thread creation failed", then a crash).
THREADS_PER_CPU = 4
THREAD_LIMIT_REASON = f"{THREADS_PER_CPU} per CPU this process may use"
MAX_BATCH_SIZE = 1024


def thread_limit() -> int:
    """The most compute threads, streams or decode workers accepted here."""
    return THREADS_PER_CPU * available_cpus()


def check_count(label: str, value: object, low: int, high: int, why: str = "") -> int:
    """`value` as a whole number in [low, high], else a `UsageError` naming `label` and the range."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None or not low <= number <= high:
        reason = f" ({why})" if why else ""
        raise UsageError(f"{label} must be a whole number from {low} to {high}{reason}, not {value!r}")
    return number


def check_rate(label: str, value: object, high: float) -> float:
    """`value` as a finite number above 0 and at most `high`, else a `UsageError`."""
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and 0 < number <= high):
        raise UsageError(f"{label} must be a finite number above 0 and at most {high:g}, not {value!r}")
    return number


@dataclass
class Settings:
    home: Path = field(default_factory=_default_home)
    offline: bool = False
    device: str = "auto"
    precision: str = "auto"
    engine: str = "auto"
    threads: int | None = None
    max_pixels: int = 178_956_970  # twice Pillow's warning level: a 13000 x 13000 photo still opens

    max_decode_mb: int = 512  # memory one decoded image may take (bands x width x height), in MB

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        for name, accepts in ACCEPTS.items():
            if name in env and not env[name].strip():
                # an empty value is a mistake, not a default (PIXELSIFT_HOME='' once wrote to the real cache)
                raise UsageError(f"{name} is set but empty: give {accepts}, or unset it")
        settings = cls()
        if env.get("PIXELSIFT_HOME"):
            settings.home = Path(env["PIXELSIFT_HOME"]).expanduser()
        offline = env.get("PIXELSIFT_OFFLINE", "").strip().lower()
        if offline and offline not in _TRUE | _FALSE:
            raise UsageError(
                f"PIXELSIFT_OFFLINE={env['PIXELSIFT_OFFLINE']!r}: use 1 (never download) or 0 "
                "(also true/false, yes/no, on/off)"
            )
        settings.offline = offline in _TRUE
        device = env.get("PIXELSIFT_DEVICE", "").strip().lower()
        if device:
            if not _DEVICE.fullmatch(device):
                raise UsageError(f"PIXELSIFT_DEVICE={env['PIXELSIFT_DEVICE']!r}: use one of {DEVICES_HELP}")
            settings.device = device
        settings.precision = _one_of(env, "PIXELSIFT_PRECISION", PRECISIONS, settings.precision)
        settings.engine = _one_of(env, "PIXELSIFT_ENGINE", ENGINES, settings.engine)
        settings.threads = _positive_int(env, "PIXELSIFT_THREADS", settings.threads, "compute threads", 4)
        if settings.threads is not None:
            check_count(
                f"PIXELSIFT_THREADS={env['PIXELSIFT_THREADS']!r}",
                settings.threads,
                1,
                thread_limit(),
                THREAD_LIMIT_REASON,
            )
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


def _one_of(env: os._Environ[str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in choices:
        raise UsageError(f"{name}={env[name]!r}: use one of {', '.join(choices)}")
    return value


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
