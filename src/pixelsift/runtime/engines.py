"""The one place a network becomes a runner: `create_runner(spec, network, run_options)` picks the engine."""

from __future__ import annotations

from torch import nn

from pixelsift.models.records import ClassifierSpec
from pixelsift.runtime.onnx_runner import OnnxRunner, ensure_onnx
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner


def create_runner(
    spec: ClassifierSpec, network: nn.Module, run_options: RunOptions
) -> ModelRunner | OnnxRunner:
    """The runner for `run_options.engine`: every task that runs a classification network gets it here."""
    if run_options.engine == "onnxruntime":
        return OnnxRunner(ensure_onnx(spec, network), run_options)
    return ModelRunner(network, run_options)
