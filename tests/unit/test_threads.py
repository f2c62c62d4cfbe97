"""The thread split: never more compute + decode threads than the CPUs this process may use."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelsift import config
from pixelsift.errors import ImageError
from pixelsift.imaging.pipeline import iter_computed
from pixelsift.runtime.device import MAX_STREAMS, plan_threads, stream_choices


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 6, 8, 16, 64])
def test_default_cpu_plans_never_oversubscribe_the_allowed_cpus(
    cpus: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(config, "cgroup_cpu_limit", lambda: None)
    monkeypatch.delenv("PIXELSIFT_THREADS", raising=False)
    assert config.available_cpus() == cpus
    for streams in [None, *stream_choices(cpus)]:
        plan = plan_threads(torch.device("cpu"), streams=streams)
        assert plan.streams * plan.threads + plan.workers <= cpus, plan
        assert plan.streams <= MAX_STREAMS and plan.threads >= 1
    with_decoders = plan_threads(torch.device("cpu"), workers=1)
    assert with_decoders.streams * with_decoders.threads + 1 <= max(cpus, 2)


def test_a_container_quota_limits_the_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # docker --cpus 1.5
    assert config.cgroup_cpu_limit(cpu_max, tmp_path / "none") == 2
    cpu_max.write_text("max 100000\n")
    assert config.cgroup_cpu_limit(cpu_max, tmp_path / "none") is None
    v1 = tmp_path / "cpu.cfs_quota_us"
    v1.write_text("300000")
    (tmp_path / "cpu.cfs_period_us").write_text("100000")
    assert config.cgroup_cpu_limit(tmp_path / "absent", v1) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(config, "cgroup_cpu_limit", lambda: 3)
    assert config.available_cpus() == 3


def test_gpu_plans_compute_in_one_stream_fed_by_decode_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(config, "cgroup_cpu_limit", lambda: None)
    plan = plan_threads(torch.device("cuda"))
    assert (plan.streams, plan.workers) == (1, 8)


def _decode(path: str) -> tuple[np.ndarray, str]:
    if path.endswith("bad"):
        raise ImageError(path, "unreadable")
    time.sleep(0.002 * (hash(path) % 3))  # uneven decode times: lanes finish out of order
    return np.full((3, 2, 2), int(path.split("-")[1]), np.uint8), path


@pytest.mark.parametrize(("streams", "workers"), [(1, 0), (3, 0), (2, 2)])
def test_streams_keep_input_order_and_failures_in_place(streams: int, workers: int) -> None:
    paths = [f"p-{i}" + ("-bad" if i % 7 == 3 else "") for i in range(40)]
    seen_threads: set[str] = set()

    def compute(pixels: np.ndarray) -> np.ndarray:
        seen_threads.add(threading.current_thread().name)
        time.sleep(0.005)  # long enough that a second stream starts while the first computes
        return pixels[:, 0, 0, 0].astype(int)

    order, failed = [], []
    for batch, result in iter_computed(
        paths, _decode, compute, batch_size=4, streams=streams, workers=workers
    ):
        for item in batch.items:
            order.append(item.index)
            if item.ok:
                assert result[item.row] == int(item.path.split("-")[1])
            else:
                failed.append(item.path)
    assert order == list(range(40))
    assert failed == [p for p in paths if p.endswith("bad")]
    if streams > 1:
        assert len(seen_threads) > 1, "batches computed on more than one thread"


def test_a_crash_in_a_stream_reaches_the_caller() -> None:
    def compute(pixels: np.ndarray) -> None:
        raise RuntimeError("kernel failed")

    with pytest.raises(RuntimeError, match="kernel failed"):
        list(iter_computed([f"p-{i}" for i in range(20)], _decode, compute, batch_size=2, streams=2))


def test_stream_threads_run_torch_with_the_runner_thread_count() -> None:
    """torch's thread count set by a runner holds inside the stream threads too."""
    from pixelsift.runtime.options import RunOptions
    from pixelsift.runtime.torch_runner import ModelRunner

    before = torch.get_num_threads()
    try:
        runner = ModelRunner(torch.nn.Conv2d(3, 3, 1), RunOptions(device="cpu"), threads=1)
        counts: list[int] = []

        def compute(pixels: np.ndarray) -> None:
            runner(pixels.astype(np.float32))
            counts.append(torch.get_num_threads())

        list(iter_computed([f"p-{i}" for i in range(8)], _decode, compute, batch_size=2, streams=2))
        assert set(counts) == {1}
    finally:
        torch.set_num_threads(before)
