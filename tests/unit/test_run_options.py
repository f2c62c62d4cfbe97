"""RunOptions: one frozen, picklable object that is enough to rebuild the same runner elsewhere."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch
from torch import nn

from pixelsift.errors import UsageError
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner


def test_run_options_are_frozen_and_survive_pickling() -> None:
    options = RunOptions(device="cpu", precision="fp32", threads=1, batch_size=3, workers=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.threads = 2  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(options))
    assert again == options and hash(again) == hash(options)


def test_a_pickled_run_options_rebuilds_the_same_runner() -> None:
    options = RunOptions(device="cpu", precision="fp32", threads=1)
    net = nn.Conv2d(3, 2, 3)
    here = ModelRunner(net, options)
    there = ModelRunner(net, pickle.loads(pickle.dumps(options)))
    assert here.describe() == there.describe()
    x = torch.zeros(1, 3, 8, 8).numpy()
    assert (here(x)[0] == there(x)[0]).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"engine": "tensorrt"}, "unknown engine"),
        ({"precision": "int4"}, "unknown precision"),
        ({"threads": 0}, "--threads"),
        ({"batch_size": -1}, "--batch-size"),
        ({"workers": -2}, "--workers"),
    ],
)
def test_bad_run_options_are_usage_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RunOptions(**changes)  # type: ignore[arg-type]


def test_keywords_apply_on_top_of_options_and_none_means_unset() -> None:
    base = RunOptions(device="cpu", threads=2)
    merged = RunOptions.of(base, threads=None, batch_size=8)
    assert merged == RunOptions(device="cpu", threads=2, batch_size=8)
    assert RunOptions.of(base) is base
    with pytest.raises(TypeError, match="colour"):
        RunOptions.of(base, colour="red")


def test_the_cli_builds_one_run_options_from_its_flags() -> None:
    from pixelsift.cli import build_parser
    from pixelsift.cli.common import run_options

    args = build_parser().parse_args(
        ["classify", "x.jpg", "--device", "cpu", "--threads", "1", "--batch-size", "2", "--workers", "0"]
    )
    assert run_options(args) == RunOptions(device="cpu", threads=1, batch_size=2, workers=0)


def test_another_batch_size_reuses_the_loaded_network_and_another_runner_does_not() -> None:
    from pixelsift.runtime.loaded import ImageModel, clear_model_cache

    clear_model_cache()
    first = ImageModel.load(device="cpu", precision="fp32", batch_size=2)
    again = ImageModel.load(device="cpu", precision="fp32", batch_size=3, workers=1)
    assert again.network is first.network and again.runner is first.runner
    assert (first.batch_size, again.batch_size, again.run_options.workers) == (2, 3, 1)
    other = ImageModel.load(device="cpu", precision="auto")
    assert other.runner is not first.runner
    clear_model_cache()
