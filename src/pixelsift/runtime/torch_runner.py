"""The torch engine: `ModelRunner` runs a network on batches with device, precision, memory format and
threads chosen once (see `device.py`).

`ModelRunner(network)` puts a network in eval mode on the right device once, then runs NCHW batches
(numpy or torch) and returns float32 numpy outputs. A batch is either float32, already normalised, or
uint8 straight from `Preprocessing.pixels`: then the scaling and normalisation are the model's first
operation, on its device (on a GPU the uint8 batch crosses the bus from pinned memory, 4x fewer bytes).
Convolutional networks run in channels-last memory format, which oneDNN and cuDNN run faster.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from pixelsift.models.preprocess import Preprocessing
from pixelsift.runtime.device import (
    CpuFeatures,
    choose_precision,
    default_batch_size,
    default_threads,
    resolve_device,
)
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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

    >>> runner = ModelRunner(nn.Conv2d(3, 4, 3), RunOptions(device="cpu", precision="fp32"))
    >>> runner(np.zeros((2, 3, 8, 8), np.float32))[0].shape
    (2, 4, 6, 6)
    """

    def __init__(
        self,
        network: nn.Module,
        run_options: RunOptions | None = None,
        *,
        channels_last: bool | None = None,
        cpu_features: CpuFeatures | None = None,
        fold_bn: bool = True,
        preprocessing: Preprocessing | None = None,
        threads: int | None = None,
        streams: int = 1,
        workers: int = 0,
    ):
        run_options = run_options or RunOptions()
        self.device = resolve_device(run_options.device)
        self.precision, self.precision_reason = choose_precision(
            run_options.precision, self.device, cpu_features
        )
        self.engine = "torch"
        self.threads = threads or run_options.threads or default_threads()
        self.streams, self.workers = streams, workers
        self._use_threads()
        # what this device prefers; a task's RunOptions.batch_size overrides it
        self.batch_size = default_batch_size(self.device)
        self.channels_last = has_convolutions(network) if channels_last is None else channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        if fold_bn:
            network = fold_batchnorm(network)
        self.network = network.eval().to(self.device).to(memory_format=self.memory_format)
        self._normalise: tuple[torch.Tensor, torch.Tensor] | None = None
        if preprocessing is not None:
            scale, offset = preprocessing.scale_and_offset()
            self._normalise = (
                torch.from_numpy(scale).view(1, 3, 1, 1).to(self.device),
                torch.from_numpy(offset).view(1, 3, 1, 1).to(self.device),
            )
        log.info("runner: %s", self.describe())

    def _use_threads(self) -> None:
        # torch's thread count is one setting per process: a runner sets its own before it runs
        if self.device.type == "cpu" and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def describe(self) -> str:
        layout = "channels-last" if self.channels_last else "contiguous"
        threads = f", {self.threads} threads" if self.device.type == "cpu" else ""
        return (
            f"device {self.device}, precision {self.precision} ({self.precision_reason}), {layout}{threads}"
        )

    def to_device(self, batch: np.ndarray | torch.Tensor | list[Any]) -> Any:
        """A batch on the runner's device, normalised when it is uint8; a list (images of different
        sizes, for networks that take lists) is moved image by image."""
        if isinstance(batch, list):
            return [self.to_device(image[None])[0] for image in batch]
        x = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        if x.dtype == torch.uint8:
            if self._normalise is None:
                raise TypeError("a uint8 batch needs a runner built with the model's preprocessing")
            scale, offset = self._normalise
            x = x.float().mul_(scale).sub_(offset)
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    def __call__(self, batch: np.ndarray | torch.Tensor | list[Any]) -> tuple[np.ndarray, ...]:
        """Run one batch; returns every output of the network as float32 numpy arrays."""
        self._use_threads()
        x = self.to_device(batch)
        dtype = _DTYPES.get(self.precision)
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            out: Any = self.network(x)
        outputs = out if isinstance(out, tuple | list) else (out,)
        return tuple(o.float().cpu().numpy() for o in outputs)
