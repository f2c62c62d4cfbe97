"""Which engine reads text (`ocr.engines.choose_engine`): the one asked for; else measured once per
machine among the engines that read the check photo exactly, remembered, never one that misreads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pixelsift.ocr import engines
from pixelsift.ocr.engines import CHECK_LINES, choose_engine


class FakeEngines:
    """Engines that "read" the check photo as told, taking the time they are given."""

    def __init__(self, reads: dict[str, list[str]], ms: dict[str, float]):
        self.reads, self.ms, self.built = reads, ms, []

    def build(self, engine: str) -> str:
        self.built.append(engine)
        return engine

    def read(self, engine: Any, photo: Any) -> list[str]:
        assert photo.size == (960, 540)
        return self.reads[engine]


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """`time.perf_counter` as seen by `engines`: moved on by the fake engine that just read."""
    now = {"t": 0.0}
    monkeypatch.setattr(engines.time, "perf_counter", lambda: now["t"])
    return now


def timed(fake: FakeEngines, clock: dict[str, float]) -> FakeEngines:
    real_read = fake.read

    def read(engine: Any, photo: Any) -> list[str]:
        clock["t"] += fake.ms[engine] / 1000
        return real_read(engine, photo)

    fake.read = read  # type: ignore[method-assign]
    return fake


def test_the_engine_asked_for_is_used_without_measuring(home: Path) -> None:
    fake = FakeEngines({}, {})
    assert choose_engine("openvino", 2, False, fake.build, fake.read) == "openvino"
    assert choose_engine("onnxruntime", 2, False, fake.build, fake.read) == "onnxruntime"
    assert fake.built == []


def test_without_openvino_or_on_a_gpu_onnxruntime_reads(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEngines({}, {})
    assert choose_engine(None, 2, True, fake.build, fake.read) == "onnxruntime"  # CUDA provider
    monkeypatch.setattr(engines, "is_installed", lambda module: module != "openvino")
    assert choose_engine("torch", 2, False, fake.build, fake.read) == "onnxruntime"  # torch: auto
    assert fake.built == []


def test_auto_measures_once_picks_the_faster_and_remembers(
    home: Path, monkeypatch: pytest.MonkeyPatch, fast_clock: dict[str, float]
) -> None:
    monkeypatch.setattr(engines, "is_installed", lambda module: True)
    right = list(CHECK_LINES)
    fake = timed(
        FakeEngines({"onnxruntime": right, "openvino": right}, {"onnxruntime": 400, "openvino": 90}),
        fast_clock,
    )
    assert choose_engine(None, 2, False, fake.build, fake.read) == "openvino"
    assert fake.built == ["onnxruntime", "openvino"]
    assert list((home / "tuning").glob("ocr-*.json"))
    again = FakeEngines({}, {})
    assert choose_engine("auto", 2, False, again.build, again.read) == "openvino"  # remembered
    assert again.built == []
    other = timed(
        FakeEngines({"onnxruntime": right, "openvino": right}, {"onnxruntime": 50, "openvino": 90}),
        fast_clock,
    )
    assert choose_engine(None, 4, False, other.build, other.read) == "onnxruntime"  # another thread count


def test_an_engine_that_misreads_the_check_photo_is_never_chosen(
    home: Path, monkeypatch: pytest.MonkeyPatch, fast_clock: dict[str, float]
) -> None:
    monkeypatch.setattr(engines, "is_installed", lambda module: True)
    fake = timed(
        FakeEngines(
            {"onnxruntime": list(CHECK_LINES), "openvino": ["Engine check 2O26", "Happy Birthday"]},
            {"onnxruntime": 400, "openvino": 90},
        ),
        fast_clock,
    )
    assert choose_engine(None, 2, False, fake.build, fake.read) == "onnxruntime"
    assert engines.measure(fake.build, fake.read)["openvino"] is None


def test_the_check_photo_is_read_right_by_the_real_networks(home: Path) -> None:
    pytest.importorskip("rapidocr", reason="the ocr extra")
    from pixelsift.ocr import TextReader

    reader = TextReader()
    assert reader.engine in engines.ENGINES
    assert [line.text for line in reader.read_image(engines.check_photo())] == list(CHECK_LINES)
