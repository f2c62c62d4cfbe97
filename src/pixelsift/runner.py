"""One model runner for every task: device, precision, memory format and threads, chosen safely.

`ModelRunner(network)` puts a network in eval mode on the right device once, then runs float32 NCHW
batches (numpy or torch) and returns float32 numpy outputs. `precision="auto"` picks bf16 autocast
only on CPUs that do bf16 natively (AMX or AVX-512 BF16; elsewhere bf16 is emulated and several
times *slower*), fp16 autocast on CUDA, and fp32 everywhere else. Convolutional networks run in
channels-last memory format, which oneDNN and cuDNN run faster.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import DEVICES_HELP, ENGINES, PRECISIONS, available_cpus, get_settings
from .errors import UsageError

log = logging.getLogger("pixelsift")

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


def default_batch_size(device: torch.device) -> int:
    """Images per batch. On CPUs small batches win: activations of 4 images stay in cache, and measured
    on 2 cores EfficientNet-Lite0 runs 3x faster per image at batch 4 than at batch 32."""
    if device.type == "cuda":
        return 64
    if device.type == "mps":
        return 16
    return 4 if available_cpus() <= 4 else 8


def fold_batchnorm(network: nn.Module) -> nn.Module:
    """Fold each BatchNorm into the convolution before it (inference only): ~12% faster on CPU.

    Uses torch.fx; a network it cannot trace runs unfolded, which changes speed, never results.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(network.eval())
    except Exception as exc:  # tracing fails on data-dependent control flow; nothing is lost
        log.debug("BatchNorm folding skipped for %s: %s", type(network).__name__, exc)
        return network


def has_convolutions(network: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in network.modules())


class ModelRunner:
    """Runs a network on batches with the device, precision and memory format chosen once.

    >>> runner = ModelRunner(nn.Conv2d(3, 4, 3), device="cpu", precision="fp32")
    >>> runner(np.zeros((2, 3, 8, 8), np.float32))[0].shape
    (2, 4, 6, 6)
    """

    def __init__(
        self,
        network: nn.Module,
        device: str | torch.device | None = None,
        precision: str | None = None,
        threads: int | None = None,
        channels_last: bool | None = None,
        cpu_features: CpuFeatures | None = None,
        fold_bn: bool = True,
    ):
        self.device = resolve_device(device)
        self.precision, self.precision_reason = choose_precision(precision, self.device, cpu_features)
        if threads is not None and threads < 1:
            raise UsageError("--threads must be at least 1")
        self.threads = threads or default_threads()
        if self.device.type == "cpu" and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        self.batch_size = default_batch_size(self.device)
        self.channels_last = has_convolutions(network) if channels_last is None else channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        if fold_bn:
            network = fold_batchnorm(network)
        self.network = network.eval().to(self.device).to(memory_format=self.memory_format)
        log.info("runner: %s", self.describe())

    def describe(self) -> str:
        layout = "channels-last" if self.channels_last else "contiguous"
        threads = f", {self.threads} threads" if self.device.type == "cpu" else ""
        return (
            f"device {self.device}, precision {self.precision} ({self.precision_reason}), {layout}{threads}"
        )

    def to_device(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    def __call__(self, batch: np.ndarray | torch.Tensor) -> tuple[np.ndarray, ...]:
        """Run one batch; returns every output of the network as float32 numpy arrays."""
        x = self.to_device(batch)
        dtype = _DTYPES.get(self.precision)
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            out: Any = self.network(x)
        outputs = out if isinstance(out, tuple | list) else (out,)
        return tuple(o.float().cpu().numpy() for o in outputs)


def create_runner(
    spec: Any,
    network: nn.Module,
    engine: str = "torch",
    device: str | torch.device | None = None,
    precision: str | None = None,
    threads: int | None = None,
) -> Any:
    """The runner for `engine` (`ModelRunner` or `OnnxRunner`): every task gets its runner here."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "onnxruntime":
        from .onnxrt import OnnxRunner, ensure_onnx

        return OnnxRunner(ensure_onnx(spec, network), device=device, precision=precision, threads=threads)
    return ModelRunner(network, device=device, precision=precision, threads=threads)
