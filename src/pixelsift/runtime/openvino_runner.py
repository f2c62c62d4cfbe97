"""The OpenVINO engine: Intel's runtime runs the same uint8-input ONNX export as ONNX Runtime.

`OpenVinoRunner(onnx_path, run_options, precision="fp32"|"bf16")` compiles the graph for the CPU once
(fp32 asks OpenVINO not to lower precision; bf16 is its own default on CPUs with AMX / AVX-512 BF16)
and has the `ModelRunner` interface. Each thread that calls it gets its own infer request, so several
streams run at once. Needs `pip install openvino` (optional; `--engine auto` measures it when present).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.optional import optional_import
from pixelsift.errors import UsageError
from pixelsift.models.preprocess import Preprocessing
from pixelsift.runtime.device import default_batch_size, default_threads, resolve_device
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")

_HINTS = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoRunner:
    """Runs an exported model with OpenVINO on the CPU; same interface as `ModelRunner`."""

    def __init__(
        self,
        path: Path,
        run_options: RunOptions | None = None,
        *,
        precision: str = "fp32",
        threads: int | None = None,
        streams: int = 1,
        workers: int = 0,
        preprocessing: Preprocessing | None = None,
    ):
        ov = optional_import("openvino", "openvino", "openvino", "the openvino engine")
        run_options = run_options or RunOptions(engine="openvino")
        self.engine = "openvino"
        self.device = resolve_device(run_options.device)
        if self.device.type != "cpu":
            raise UsageError("the openvino engine runs on the CPU here: use --device cpu or --engine torch")
        if precision not in _HINTS:
            raise UsageError(f"the openvino engine runs fp32 or bf16, not {precision}")
        self.precision, self.precision_reason = precision, "openvino engine"
        self.threads = threads or run_options.threads or default_threads()
        self.streams, self.workers = streams, workers
        self.batch_size = max(8, default_batch_size(self.device))
        core = ov.Core()
        # one OpenVINO stream per pixelsift stream: with one, infer requests from two threads take turns
        config = {
            "INFERENCE_NUM_THREADS": self.threads * streams,
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            "NUM_STREAMS": streams,
        }
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self._local = threading.local()
        # OpenVINO's bindings set up their numpy access on first use, and two threads doing that at
        # once deadlock (pybind11's call_once with the GIL released): do it here, in one thread.
        self._local.request = self.compiled.create_infer_request()
        np.asarray(self._local.request.get_input_tensor(0).data)
        self.path = path
        self.preprocessing = preprocessing
        log.info("runner: %s", self.describe())

    def describe(self) -> str:
        return f"engine openvino (CPU), precision {self.precision}, {self.threads} threads"

    def __call__(self, batch: Any) -> tuple[np.ndarray, ...]:
        x = batch.numpy() if hasattr(batch, "numpy") else batch
        if x.dtype != np.uint8:
            if self.preprocessing is None:
                raise TypeError("the openvino engine takes uint8 pixels (Preprocessing.pixels)")
            x = self.preprocessing.to_pixels(x)
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer({0: np.ascontiguousarray(x)})
        return tuple(np.array(request.get_output_tensor(i).data, np.float32) for i in range(2))
