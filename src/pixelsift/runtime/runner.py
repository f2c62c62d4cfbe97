"""`Runner`: what every engine's runner is to the code that calls it (PEP 544).

torch (`ModelRunner`), ONNX Runtime (`OnnxRunner`) and OpenVINO (`OpenVinoRunner`) runners all take a
batch (uint8 or float NCHW numpy, or a tensor) and return the network's outputs as float32 numpy
arrays, and say how they run: engine, device, precision and why, the batch size they prefer, and the
thread plan they were built with (compute threads per stream, streams called at once, decode workers),
given to their constructor, never set afterwards.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Runner(Protocol):
    engine: str  # "torch", "onnxruntime" or "openvino"
    device: Any  # a torch.device
    precision: str
    precision_reason: str
    batch_size: int  # what the runner prefers on its device; RunOptions.batch_size overrides it
    threads: int  # compute threads of one stream
    streams: int  # batches computed at once, each in its caller's thread
    workers: int  # decode threads feeding the streams (0: each stream decodes its own batches)

    def describe(self) -> str: ...

    def __call__(self, batch: Any) -> Any: ...
