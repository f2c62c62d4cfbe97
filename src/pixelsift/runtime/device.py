"""Where and how precisely a network runs on this machine: device, precision, threads, batch size.

`precision="auto"` picks bf16 autocast only on CPUs that do bf16 natively (AMX or AVX-512 BF16;
elsewhere bf16 is emulated and several times *slower*), fp16 autocast on CUDA, and fp32 everywhere
else. Decisions that depend on the CPU read its flags at run time (`detect_cpu_features`), and tests
pass fake flags (`CpuFeatures.from_flags`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

from pixelsift.config import DEVICES_HELP, PRECISIONS, available_cpus, get_settings
from pixelsift.errors import UsageError
from pixelsift.imaging.pipeline import default_decode_workers

log = logging.getLogger("pixelsift")


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU instruction-set features that decide whether reduced precision pays off."""

    amx_bf16: bool = False
    avx512_bf16: bool = False
    avx512f: bool = False
    avx2: bool = False

    @property
    def native_bf16(self) -> bool:
        return self.amx_bf16 or self.avx512_bf16

    @classmethod
    def from_flags(cls, flags: Sequence[str]) -> CpuFeatures:
        found = set(flags)
        return cls(
            amx_bf16="amx_bf16" in found,
            avx512_bf16="avx512_bf16" in found,
            avx512f="avx512f" in found,
            avx2="avx2" in found,
        )

    def describe(self) -> str:
        names = [n for n in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if getattr(self, n)]
        return ", ".join(names) or "no vector extensions detected"


@lru_cache(maxsize=1)
def detect_cpu_features() -> CpuFeatures:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return CpuFeatures.from_flags(line.split(":", 1)[1].split())
    except OSError:
        pass
    # Not Linux: ask oneDNN whether it has a native bf16 path.
    native = bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
    return CpuFeatures(avx512_bf16=native)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """ "auto" -> the first of cuda, mps, cpu that is available; anything else is checked, not trusted."""
    name = str(device or get_settings().device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use {DEVICES_HELP}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "device 'cuda' was asked for, but this torch build sees no CUDA GPU; use --device cpu"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(
            f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)"
        )
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device 'mps' was asked for, but Apple's Metal backend is not available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unsupported device {name!r}; use {DEVICES_HELP}")
    return dev


def choose_precision(
    requested: str | None,
    device: torch.device,
    cpu: CpuFeatures | None = None,
    cuda_bf16: bool | None = None,
) -> tuple[str, str]:
    """(precision, why) for `requested` on `device`. `auto` never picks what the device cannot run fast.

    >>> choose_precision("auto", torch.device("cpu"), CpuFeatures(amx_bf16=True))[0]
    'bf16'
    >>> choose_precision("auto", torch.device("cpu"), CpuFeatures(avx2=True))[0]
    'fp32'
    """
    requested = (requested or get_settings().precision or "auto").lower()
    if requested not in PRECISIONS:
        raise UsageError(f"unknown precision {requested!r}; use one of {', '.join(PRECISIONS)}")
    if requested == "int8":
        raise UsageError("int8 runs on the onnxruntime engine: use --engine onnxruntime or auto")
    if device.type == "cuda" and cuda_bf16 is None:
        cuda_bf16 = torch.cuda.is_bf16_supported()
    if requested == "auto":
        if device.type == "cuda":
            return "fp16", "auto: CUDA runs fp16 autocast on tensor cores"
        if device.type == "cpu":
            cpu = cpu or detect_cpu_features()
            if cpu.native_bf16:
                kind = "AMX" if cpu.amx_bf16 else "AVX-512 BF16"
                return "bf16", f"auto: this CPU has {kind}, so bf16 autocast is fast"
            return "fp32", "auto: this CPU has no native bf16 (AMX / AVX-512 BF16), where bf16 is slower"
        return "fp32", f"auto: fp32 on {device.type}"
    if requested == "bf16" and device.type == "cuda" and not cuda_bf16:
        raise UsageError("this GPU does not support bf16; use --precision fp16 or fp32")
    if requested != "fp32" and device.type == "cpu":
        cpu = cpu or detect_cpu_features()
        if not cpu.native_bf16:
            log.warning(
                "%s on a CPU without AMX / AVX-512 BF16 is emulated and usually slower than fp32", requested
            )
    return requested, "asked for"


def default_threads() -> int:
    """Compute threads: the CPUs this process may use (torch's own default counts the whole machine)."""
    return get_settings().threads or available_cpus()


def use_threads(threads: int | None = None) -> None:
    """Set torch's compute threads (one setting per process) to `threads`, default all this process
    may use: work that runs a network outside a runner (training, explanations) calls this first,
    because a runner of several streams leaves it at its per-stream count."""
    wanted = threads or default_threads()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def default_batch_size(device: torch.device) -> int:
    """Images per batch. On CPUs small batches win: activations of 4 images stay in cache, and measured
    on 2 cores EfficientNet-Lite0 runs 3x faster per image at batch 4 than at batch 32."""
    if device.type == "cuda":
        return 64
    if device.type == "mps":
        return 16
    return 4 if available_cpus() <= 4 else 8


MAX_STREAMS = 8  # beyond this, more streams only hold more activations in memory


@dataclass(frozen=True)
class ThreadPlan:
    """How a network's work is spread over the CPUs: `streams` batches computed at once, each with
    `threads` compute threads, and `workers` decode threads (0: each stream decodes its own batches,
    so decoding and computing never compete for a core)."""

    streams: int
    threads: int
    workers: int

    def describe(self) -> str:
        decode = f"{self.workers} decode threads" if self.workers else "each decoding its own batches"
        return f"{self.streams} stream(s) x {self.threads} thread(s), {decode}"


def plan_threads(
    device: torch.device, cpus: int | None = None, streams: int | None = None, workers: int | None = None
) -> ThreadPlan:
    """The thread split for `cpus` compute CPUs (default: PIXELSIFT_THREADS, else the CPUs this process
    may use, affinity and container quota respected). On a CPU the default never runs more threads
    than CPUs: streams x threads (+ decode workers when asked for) <= cpus. On a GPU one stream
    computes and decode threads keep it fed (their CPUs are not the GPU's).

    >>> plan_threads(torch.device("cpu"), cpus=2)
    ThreadPlan(streams=2, threads=1, workers=0)
    >>> plan_threads(torch.device("cpu"), cpus=16, streams=4)
    ThreadPlan(streams=4, threads=4, workers=0)
    """
    cpus = cpus or default_threads()
    if device.type != "cpu":
        decoders = workers or default_decode_workers()
        return ThreadPlan(streams=streams or 1, threads=1, workers=decoders)
    workers = workers or 0
    compute = max(1, cpus - workers)
    streams = min(streams or min(compute, MAX_STREAMS), compute)
    return ThreadPlan(streams=streams, threads=max(1, compute // streams), workers=workers)


def stream_choices(cpus: int) -> list[int]:
    """The stream counts worth measuring on `cpus` CPUs: 1, 2, 4 ... up to min(cpus, MAX_STREAMS)."""
    choices, n = [], 1
    while n <= min(cpus, MAX_STREAMS):
        choices.append(n)
        n *= 2
    top = min(cpus, MAX_STREAMS)
    return choices if choices[-1] == top else [*choices, top]
