from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelsift.errors import ImageError
from pixelsift.imaging.pipeline import iter_batches


def fake_decode(path: str) -> tuple[np.ndarray, Any]:
    if "bad" in path:
        raise ImageError(path, "broken")
    value = float(Path(path).stem.split("_")[-1])
    return np.full((3, 2, 2), value, np.float32), value


def test_batches_keep_input_order_and_failures_in_place() -> None:
    sources: list[Any] = [f"img_{i}" for i in range(10)]
    sources.insert(3, "bad_x")
    sources.insert(7, ImageError("missing.jpg", "no such file"))
    items = []
    for batch in iter_batches(sources, fake_decode, batch_size=4, workers=3):
        assert len(batch.ok_items) <= 4
        for item in batch.items:
            if item.ok:
                assert batch.pixels[item.row, 0, 0, 0] == item.info
            items.append(item)
    assert [i.path for i in items] == [str(s.path if isinstance(s, ImageError) else s) for s in sources]
    assert [i.index for i in items] == list(range(len(sources)))
    assert [i.error for i in items if not i.ok] == ["broken", "no such file"]


def test_decode_runs_in_parallel_threads() -> None:
    seen: set[int] = set()

    def slow(path: str) -> tuple[np.ndarray, Any]:
        seen.add(threading.get_ident())
        time.sleep(0.02)
        return np.zeros((3, 1, 1), np.float32), None

    list(iter_batches([f"{i}" for i in range(16)], slow, batch_size=4, workers=4))
    assert len(seen) > 1


def test_memory_is_bounded_when_the_consumer_is_slow() -> None:
    """The producer may run ahead by at most a few batches plus the decodes in flight."""
    decoded = 0
    lock = threading.Lock()

    def count(path: str) -> tuple[np.ndarray, Any]:
        nonlocal decoded
        with lock:
            decoded += 1
        return np.zeros((3, 1, 1), np.float32), None

    batch_size, workers, queued = 4, 2, 2
    consumed = 0
    max_ahead = 0
    for batch in iter_batches(
        (f"{i}" for i in range(400)), count, batch_size=batch_size, workers=workers, queued_batches=queued
    ):
        time.sleep(0.01)
        consumed += len(batch.items)
        with lock:
            max_ahead = max(max_ahead, decoded - consumed)
    assert consumed == 400
    bound = (queued + 1) * batch_size + batch_size + workers
    assert max_ahead <= bound, f"producer ran {max_ahead} items ahead (bound {bound})"


def test_closing_early_stops_the_producer() -> None:
    calls = 0

    def count(path: str) -> tuple[np.ndarray, Any]:
        nonlocal calls
        calls += 1
        return np.zeros((3, 1, 1), np.float32), None

    gen = iter_batches((f"{i}" for i in range(100_000)), count, batch_size=2, workers=2)
    next(gen)
    gen.close()
    time.sleep(0.2)
    settled = calls
    time.sleep(0.2)
    assert calls == settled < 100


def test_an_unexpected_decoder_crash_reaches_the_caller() -> None:
    def crash(path: str) -> tuple[np.ndarray, Any]:
        raise RuntimeError("bug in decoder")

    with pytest.raises(RuntimeError, match="bug in decoder"):
        list(iter_batches(["a"], crash, batch_size=2))
