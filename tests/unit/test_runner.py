from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pixelsift.errors import UsageError
from pixelsift.runtime.device import CpuFeatures, choose_precision, resolve_device
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner

CPU = torch.device("cpu")
AMX = CpuFeatures(amx_bf16=True, avx512_bf16=True, avx512f=True, avx2=True)
AVX512_BF16 = CpuFeatures(avx512_bf16=True, avx512f=True, avx2=True)
AVX2_ONLY = CpuFeatures(avx2=True)


@pytest.mark.parametrize(
    ("cpu", "expected"), [(AMX, "bf16"), (AVX512_BF16, "bf16"), (AVX2_ONLY, "fp32"), (CpuFeatures(), "fp32")]
)
def test_auto_picks_bf16_only_where_the_cpu_does_it_natively(cpu: CpuFeatures, expected: str) -> None:
    assert choose_precision("auto", CPU, cpu)[0] == expected


def test_auto_on_gpus() -> None:
    assert choose_precision("auto", torch.device("cuda"), cuda_bf16=True)[0] == "fp16"
    assert choose_precision("auto", torch.device("cuda"), cuda_bf16=False)[0] == "fp16"
    assert choose_precision("auto", torch.device("mps"))[0] == "fp32"


def test_explicit_precisions_and_what_a_device_cannot_run() -> None:
    assert choose_precision("fp32", CPU, AMX)[0] == "fp32"
    assert choose_precision("bf16", CPU, AVX2_ONLY)[0] == "bf16"  # asked for: allowed, with a warning
    with pytest.raises(UsageError, match="does not support bf16"):
        choose_precision("bf16", torch.device("cuda"), cuda_bf16=False)
    with pytest.raises(UsageError, match="unknown precision"):
        choose_precision("int3", CPU, AMX)


def test_cpu_flags_parsing() -> None:
    assert CpuFeatures.from_flags(
        ["fpu", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    ).native_bf16
    assert not CpuFeatures.from_flags(["fpu", "sse", "avx2", "fma"]).native_bf16


def test_resolve_device() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device("tpu9")


def _convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    ).eval()


def test_runner_fp32_matches_plain_torch_and_uses_channels_last() -> None:
    net = _convnet()
    x = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32)
    with torch.inference_mode():
        expected = net(torch.from_numpy(x)).numpy()
    runner = ModelRunner(net, RunOptions(device="cpu", precision="fp32"))
    assert runner.channels_last
    (out,) = runner(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert "fp32" in runner.describe() and "channels-last" in runner.describe()


def test_runner_bf16_is_close_to_fp32() -> None:
    """bf16 keeps 8 bits of mantissa: outputs agree with fp32 to about 2 decimal places."""
    net = _convnet()
    x = np.random.default_rng(1).normal(size=(4, 3, 16, 16)).astype(np.float32)
    (ref,) = ModelRunner(net, RunOptions(device="cpu", precision="fp32"))(x)
    (out,) = ModelRunner(net, RunOptions(device="cpu", precision="bf16"))(x)
    np.testing.assert_allclose(out, ref, rtol=0.05, atol=0.05)


def test_runner_returns_every_output_of_a_tuple_network() -> None:
    class Two(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x.mean((2, 3)), x.amax((2, 3))

    a, b = ModelRunner(Two(), RunOptions(device="cpu", precision="fp32"))(np.ones((2, 3, 4, 4), np.float32))
    assert a.shape == b.shape == (2, 3)


def test_bad_thread_count_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        ModelRunner(_convnet(), RunOptions(device="cpu", precision="fp32", threads=0))


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18", "densenet121", "mobilenet_v3_small"])
def test_batchnorm_folding_removes_batchnorm_and_keeps_outputs(name: str) -> None:
    from pixelsift.models.network import split_at_last_linear
    from pixelsift.models.registry import get_model_spec
    from pixelsift.runtime.torch_runner import fold_batchnorm

    spec = get_model_spec(name)
    torch.manual_seed(0)
    net = split_at_last_linear(spec.build()).eval()  # type: ignore[misc]
    for m in net.modules():  # non-trivial statistics, so a wrong fold would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    before = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    folded = fold_batchnorm(net)
    after = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert before > 0 and after < before
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        for a, b in zip(net(x), folded(x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
