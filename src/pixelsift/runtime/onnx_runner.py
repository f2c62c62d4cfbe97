"""The ONNX Runtime engine: export a registry model to ONNX (checked against torch) and run it.

`export_onnx("densenet121")` writes `<weights>.onnx` beside the model's weights in the cache, with a
JSON note naming the weights file it came from, so a changed weights file triggers a new export.
`OnnxRunner` has the `ModelRunner` interface (call it with an NCHW float32 batch, get numpy outputs),
so every task can run on `--engine onnxruntime`. The graph takes uint8 pixels (`Preprocessing.pixels`)
and scales and normalises them as its first operations. Needs the extra `pixelsift[onnx]`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixelsift.core.optional import optional_import
from pixelsift.errors import PixelsiftError, UsageError
from pixelsift.models import weights
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ModelSpec, preprocessing_of
from pixelsift.runtime.device import default_batch_size, default_threads, resolve_device
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")

OPSET = 17
_INT8_RECIPE = 2  # bump when the quantization settings change, so cached int8 files are redone
_FORMAT = 2  # bump when the exported graph changes shape (inputs / outputs), so old files are redone


def _ort() -> Any:
    return optional_import("onnxruntime", "onnxruntime", "onnx", "the onnxruntime engine")


def onnx_cache_path(spec: ModelSpec) -> Path:
    """`$PIXELSIFT_HOME/weights/<source>/<weights stem>.onnx`, beside the weights it is made from."""
    assert spec.weights is not None
    stem = spec.weights.filename.rsplit(".", 1)[0]
    return weights.cache_path(spec).with_name(f"{stem}.onnx")


def _weights_identity(spec: ModelSpec) -> dict[str, Any]:
    path = weights.resolve(spec)
    stat = path.stat()
    return {"weights": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": _FORMAT}


@dataclass
class ExportReport:
    path: Path
    max_abs_diff: float  # largest |onnxruntime - torch| over the logits of the check inputs
    top1_agreement: float  # fraction of check inputs whose top-1 class is the same
    seconds: float
    matches: bool  # largest difference within 1e-3 of the logits' scale

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "max_abs_diff": self.max_abs_diff,
            "top1_agreement": self.top1_agreement,
            "seconds": round(self.seconds, 2),
            "matches_torch": self.matches,
        }


def check_inputs(spec: ModelSpec, count: int = 4, seed: int = 0) -> np.ndarray:
    """Deterministic uint8 check inputs: smooth random images (closer to photos than white noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    preprocessing = preprocessing_of(spec)
    size = preprocessing.resize
    images = []
    for _ in range(count):
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((size + 40, size), Image.Resampling.BICUBIC)
        images.append(preprocessing.pixels(img))
    return np.stack(images)


class FromPixels(nn.Module):
    """uint8 (N, 3, H, W) -> the network's outputs: scaling and normalisation as the first operations."""

    def __init__(self, network: nn.Module, preprocessing: Preprocessing):
        super().__init__()
        self.network = network
        scale, offset = preprocessing.scale_and_offset()
        self.scale: torch.Tensor
        self.offset: torch.Tensor
        self.register_buffer("scale", torch.from_numpy(scale).view(1, 3, 1, 1))
        self.register_buffer("offset", torch.from_numpy(offset).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> Any:
        return self.network(pixels.float() * self.scale - self.offset)


def _export_graph(network: nn.Module, example: torch.Tensor, path: Path) -> None:
    axes = {"pixels": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is chatty about deprecations
        torch.onnx.export(
            network,
            (example,),
            str(path),
            input_names=["pixels"],
            output_names=["features", "logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def export_onnx(
    spec: ModelSpec, network: nn.Module, path: Path | None = None, check: np.ndarray | None = None
) -> ExportReport:
    """Export `network` (a SplitNetwork: pixels -> features, logits) with uint8 input and compare it
    with torch on the same pixels."""
    ort = _ort()
    target = Path(path) if path else onnx_cache_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    inputs = check if check is not None else check_inputs(spec)
    start = time.perf_counter()
    network = FromPixels(network.eval().float(), preprocessing_of(spec)).eval()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        _export_graph(network, torch.from_numpy(inputs[:1]), partial)
        session = ort.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            expected_all = [t.numpy() for t in network(torch.from_numpy(inputs))[:2]]
        got_all = session.run(["features", "logits"], {"pixels": inputs})
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    # both outputs must match (a detector's box codes as much as its class logits), each to 1e-3 of
    # its own magnitude; the report gives the logits' difference and top-1 agreement
    matches = all(
        float(np.abs(g - e).max()) <= 1e-3 * max(1.0, float(np.abs(e).max()))
        for g, e in zip(got_all, expected_all, strict=True)
    )
    got, expected = got_all[1], expected_all[1]
    diff = float(np.abs(got - expected).max())
    agree = float((got.argmax(-1) == expected.argmax(-1)).mean())
    return ExportReport(target, diff, agree, time.perf_counter() - start, matches)


def export_to_cache(spec: ModelSpec, network: nn.Module) -> ExportReport:
    """Export into the cache with a note naming the weights it came from; refuse a mismatching graph."""
    path = onnx_cache_path(spec)
    report = export_onnx(spec, network, path)
    if not report.matches:
        path.unlink(missing_ok=True)
        raise PixelsiftError(
            f"the ONNX export of {spec.name} does not match torch (largest difference "
            f"{report.max_abs_diff:.3g}); use --engine torch"
        )
    note = path.with_name(path.name + ".json")
    note.write_text(json.dumps({"source": _weights_identity(spec), "check": report.to_dict()}, indent=2))
    return report


def ensure_onnx(spec: ModelSpec, network: nn.Module) -> Path:
    """The cached ONNX file for `spec`, exported now when missing or made from other weights."""
    path = onnx_cache_path(spec)
    note = path.with_name(path.name + ".json")
    if path.is_file() and note.is_file():
        with contextlib.suppress(ValueError, OSError):
            if json.loads(note.read_text()).get("source") == _weights_identity(spec):
                return path
    log.info("exporting %s to ONNX (once; cached at %s)", spec.name, path)
    return export_to_cache(spec, network).path


class OnnxRunner:
    """Runs an exported model with ONNX Runtime; same interface as `ModelRunner`."""

    def __init__(
        self,
        path: Path,
        run_options: RunOptions | None = None,
        preprocessing: Preprocessing | None = None,
        *,
        precision: str = "fp32",
        threads: int | None = None,
        streams: int = 1,
        workers: int = 0,
    ):
        ort = _ort()
        run_options = run_options or RunOptions(engine="onnxruntime")
        self.engine = "onnxruntime"
        self.device = resolve_device(run_options.device)
        self.precision = precision
        self.precision_reason = "int8 quantized graph" if precision == "int8" else "onnxruntime engine"
        self.threads = threads or run_options.threads or default_threads()
        self.streams, self.workers = streams, workers
        # ONNX Runtime's CPU kernels gain from batches of 8 where torch's prefer 4 on small CPUs
        # (efficientnet_lite0 end to end on 2 cores: 60-65 images/s at 4, 68-76 at 8, 64-73 at 16).
        self.batch_size = max(8, default_batch_size(self.device))
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError(
                    "onnxruntime here has no CUDA provider: install onnxruntime-gpu, or use --engine torch"
                )
            providers.insert(0, "CUDAExecutionProvider")
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = self.threads
        session_options.inter_op_num_threads = 1
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), session_options, providers=providers)
        self.path = path
        self.preprocessing = preprocessing
        log.info("runner: %s", self.describe())

    def describe(self) -> str:
        provider = self.session.get_providers()[0]
        return f"engine onnxruntime ({provider}), precision {self.precision}, {self.threads} threads"

    def __call__(self, batch: np.ndarray | torch.Tensor) -> tuple[np.ndarray, ...]:
        x = batch.numpy() if isinstance(batch, torch.Tensor) else batch
        if x.dtype != np.uint8:  # a normalised float batch: back to the graph's uint8 levels
            if self.preprocessing is None:
                raise TypeError("the ONNX graph takes uint8 pixels; pass Preprocessing.pixels output")
            x = self.preprocessing.to_pixels(x)
        outputs = self.session.run(None, {"pixels": np.ascontiguousarray(x)})
        return tuple(np.asarray(o, dtype=np.float32) for o in outputs)


def int8_cache_path(spec: ModelSpec) -> Path:
    """`<weights stem>.int8.onnx` beside the fp32 export it is quantized from."""
    return onnx_cache_path(spec).with_suffix(".int8.onnx")


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over uint8 photo batches (duck-typed: get_next, rewind)."""

    def __init__(self, pixels: np.ndarray, batch: int = 4):
        self.batches = [pixels[i : i + batch] for i in range(0, len(pixels), batch)]
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {"pixels": self.batches[self.position - 1]}

    def rewind(self) -> None:
        self.position = 0


def ensure_int8(spec: ModelSpec, network: nn.Module, calibration: np.ndarray) -> Path:
    """The cached int8 model of `spec`: ONNX Runtime's post-training static quantization (QDQ, int8
    weights per channel, uint8 activations) of the fp32 export, calibrated on `calibration` (uint8
    photos). The first convolution and the classifier stay fp32, the usual practice: measured on
    efficientnet_lite0 it raised top-1 agreement with fp32 on the birds set from 79% to 92%. Redone
    when the fp32 export it was made from changes."""
    source = ensure_onnx(spec, network)
    target = int8_cache_path(spec)
    note = target.with_name(target.name + ".json")
    identity = {
        "source": _weights_identity(spec),
        "onnx_mtime_ns": source.stat().st_mtime_ns,
        "recipe": _INT8_RECIPE,
    }
    if target.is_file() and note.is_file():
        with contextlib.suppress(ValueError, OSError):
            if json.loads(note.read_text()).get("source") == identity:
                return target
    quantization = optional_import("onnxruntime.quantization", "onnxruntime", "onnx", "int8 quantization")
    log.info("quantizing %s to int8 (once; cached at %s)", spec.name, target)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    prepared = target.with_name(f".{target.name}.{os.getpid()}.prepared")
    try:
        quantization.shape_inference.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        onnx = optional_import("onnx", "onnx", "onnx", "int8 quantization")
        nodes = onnx.load(str(prepared)).graph.node
        convs = [n.name for n in nodes if n.op_type == "Conv"]
        keep_float = convs[:1] + [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
        quantization.quantize_static(
            str(prepared),
            str(partial),
            _Calibration(calibration),
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=True,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"],
            nodes_to_exclude=keep_float,
        )
        os.replace(partial, target)
    finally:
        for leftover in (partial, prepared):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    note.write_text(json.dumps({"source": identity}, indent=2))
    return target
