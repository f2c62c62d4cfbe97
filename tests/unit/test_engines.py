"""Every precision and engine against fp32 torch, with real and random weights, on fixed inputs.

Tolerances (on softmax probabilities, which users see): onnxruntime fp32 1e-4 (same arithmetic,
different kernels); bf16 0.05 (8-bit mantissa); fp16 0.01 (11-bit mantissa). Top-1 must agree on
inputs whose best class leads by a clear margin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelsift.core.arrays import softmax
from pixelsift.errors import UsageError
from pixelsift.models import weights
from pixelsift.models.registry import get_model_spec
from pixelsift.runtime.classify import Classifier
from pixelsift.runtime.loaded import ImageModel
from pixelsift.runtime.onnx_runner import check_inputs, onnx_cache_path

TOLERANCE = {("torch", "bf16"): 0.05, ("torch", "fp16"): 0.01, ("onnxruntime", "fp32"): 1e-4}


def _probabilities(model: str, engine: str, precision: str, inputs: np.ndarray) -> np.ndarray:
    runner_model = ImageModel.load(model, engine=engine, precision=precision, device="cpu", cached=False)
    return softmax(runner_model.run(inputs)[1])


@pytest.mark.parametrize(("engine", "precision"), list(TOLERANCE))
@pytest.mark.parametrize("which", ["real", "random"])
def test_outputs_close_to_fp32(
    which: str, engine: str, precision: str, random_resnet18: str, samples: Path
) -> None:
    model = "efficientnet_lite0" if which == "real" else random_resnet18
    spec = get_model_spec(model)
    from pixelsift.imaging.images import open_image

    photos = [spec.preprocessing.pixels(open_image(p)) for p in sorted(samples.glob("*.*g"))]  # type: ignore[misc]
    inputs = np.concatenate([check_inputs(spec, count=3), np.stack(photos)])
    reference = _probabilities(model, "torch", "fp32", inputs)
    probs = _probabilities(model, engine, precision, inputs)
    tol = TOLERANCE[(engine, precision)]
    assert np.abs(probs - reference).max() <= tol
    ranked = np.sort(reference, axis=1)
    clear = ranked[:, -1] - ranked[:, -2] > 2 * tol
    assert (probs.argmax(1) == reference.argmax(1))[clear].all()


def test_onnx_round_trip_same_top1_on_bundled_photos(random_resnet18: str, samples: Path) -> None:
    for model in ("efficientnet_lite0", random_resnet18):
        torch_results = Classifier(model, engine="torch", precision="fp32").classify(samples, top_k=1)
        onnx_results = Classifier(model, engine="onnxruntime").classify(samples, top_k=1)
        assert [r.labels for r in onnx_results] == [r.labels for r in torch_results]
        assert onnx_cache_path(get_model_spec(model)).is_file(), "the export is cached beside the weights"


def test_onnx_export_is_redone_when_the_weights_change(random_resnet18: str, tmp_path: Path) -> None:
    spec = get_model_spec(random_resnet18)
    Classifier(random_resnet18, engine="onnxruntime")
    note = onnx_cache_path(spec).with_name(onnx_cache_path(spec).name + ".json")
    first = json.loads(note.read_text())
    torch.manual_seed(1)
    torch.save(spec.build().state_dict(), tmp_path / "other.pth")  # type: ignore[misc]
    weights.add(spec, tmp_path / "other.pth")
    from pixelsift.runtime.loaded import clear_model_cache

    clear_model_cache()
    Classifier(random_resnet18, engine="onnxruntime")
    assert json.loads(note.read_text())["source"] != first["source"]


def test_onnxruntime_batches_at_least_8_images_on_a_cpu() -> None:
    """Its CPU kernels gain from batches of 8 where torch's prefer 4 on small CPUs (bench_inference)."""
    from pixelsift.runtime.loaded import ImageModel

    ort_model = ImageModel.load(engine="onnxruntime", device="cpu", cached=False)
    assert ort_model.runner.batch_size >= 8
    assert ImageModel.load(device="cpu", cached=False).runner.batch_size <= ort_model.runner.batch_size


def test_onnxruntime_refuses_reduced_precision() -> None:
    with pytest.raises(UsageError, match="runs fp32"):
        ImageModel.load("efficientnet_lite0", engine="onnxruntime", precision="bf16", cached=False)


def test_models_export_cli_reports_the_largest_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixelsift.cli import main

    out_file = tmp_path / "lite0.onnx"
    assert main(["models", "export", "efficientnet_lite0", "--format", "onnx", "-o", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert out_file.is_file() and f"exported to {out_file}" in out
    diff = float(out.split("check images:")[1].split()[0])
    assert diff < 1e-3
    assert "same top-1 class: 100%" in out


def _uint8_batch(spec, samples: Path) -> np.ndarray:  # type: ignore[no-untyped-def]
    from pixelsift.imaging.images import open_image

    return np.stack([spec.preprocessing.pixels(open_image(p)) for p in sorted(samples.glob("*.*g"))])


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_uint8_batches_give_the_outputs_of_the_float_path(engine: str, samples: Path) -> None:
    """Normalisation as the model's first operation (torch: on its device; ONNX: in the graph) gives the
    logits of the same pixels normalised in numpy, within 1e-4 (float32 rounding of a different order
    of operations)."""
    spec = get_model_spec("efficientnet_lite0")
    pixels = _uint8_batch(spec, samples)
    model = ImageModel.load("efficientnet_lite0", engine=engine, precision="fp32", device="cpu", cached=False)
    from_uint8 = model.run(pixels)[1]
    reference = ImageModel.load("efficientnet_lite0", engine="torch", precision="fp32", device="cpu")
    from_float = reference.run(spec.preprocessing.normalise_batch(pixels))[1]
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-4 * max(1.0, float(np.abs(from_float).max())))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_runs_uint8_batches_like_the_cpu(precision: str, samples: Path) -> None:
    spec = get_model_spec("efficientnet_lite0")
    pixels = _uint8_batch(spec, samples)
    cpu = softmax(
        ImageModel.load("efficientnet_lite0", engine="torch", precision="fp32", device="cpu").run(pixels)[1]
    )
    gpu_model = ImageModel.load("efficientnet_lite0", engine="torch", precision=precision, device="cuda")
    gpu = softmax(gpu_model.run(pixels)[1])
    assert np.abs(gpu - cpu).max() <= (1e-3 if precision == "fp32" else 0.01)
    assert (gpu.argmax(1) == cpu.argmax(1)).all()


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_uint8_graph_engines_also_take_normalised_float_batches(engine: str, samples: Path) -> None:
    """A caller holding a float batch (an explanation, an augmented crop) gets the same classes: the
    batch goes back to uint8 levels (rounding moves a value by at most half a level)."""
    pytest.importorskip(engine)
    spec = get_model_spec("efficientnet_lite0")
    pixels = _uint8_batch(spec, samples)
    np.testing.assert_array_equal(
        spec.preprocessing.to_pixels(spec.preprocessing.normalise_batch(pixels)), pixels
    )
    model = ImageModel.load("efficientnet_lite0", engine=engine, precision="fp32", device="cpu", cached=False)
    from_float = model.run(spec.preprocessing.normalise_batch(pixels))[1]
    np.testing.assert_allclose(from_float, model.run(pixels)[1], atol=1e-5)
