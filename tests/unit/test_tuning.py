"""`--engine auto`: which candidates exist on which CPU, which measurement wins, and the cache.

Timings and CPU flags are faked here; `tests/integration/test_auto_engine.py` measures for real.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelsift.models import weights
from pixelsift.models.registry import get_model_spec
from pixelsift.runtime import engines, tuning
from pixelsift.runtime.device import CpuFeatures
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.tuning import Candidate, Measurement

AVX2 = CpuFeatures(avx2=True)
ZEN4 = CpuFeatures(avx512_bf16=True, avx512f=True, avx2=True)
AMX = CpuFeatures(amx_bf16=True, avx512f=True, avx2=True)


def labels(found: list[Candidate]) -> list[str]:
    return [c.label for c in found]


def test_no_emulated_precision_on_avx2_only_cpus() -> None:
    found = labels(tuning.candidates("cpu", AVX2, installed=lambda m: True))
    assert found == ["torch fp32", "onnxruntime fp32", "onnxruntime int8", "openvino fp32"]


@pytest.mark.parametrize("cpu", [ZEN4, AMX], ids=["avx512_bf16", "amx"])
def test_native_bf16_cpus_get_bf16_candidates(cpu: CpuFeatures) -> None:
    found = labels(tuning.candidates("cpu", cpu, installed=lambda m: m == "onnxruntime"))
    assert found == ["torch fp32", "torch bf16", "onnxruntime fp32", "onnxruntime int8"]


def test_features_never_get_int8_and_an_asked_precision_filters() -> None:
    assert "onnxruntime int8" not in labels(
        tuning.candidates("cpu", ZEN4, "features", installed=lambda m: True)
    )
    only_bf16 = labels(tuning.candidates("cpu", AMX, precision="bf16", installed=lambda m: True))
    assert only_bf16 == ["torch bf16", "openvino bf16"]
    assert labels(tuning.candidates("cpu", AVX2, precision="bf16", installed=lambda m: True)) == []


def test_gpus_get_half_precision_and_no_cpu_runtimes() -> None:
    assert labels(tuning.candidates("cuda", AVX2, installed=lambda m: True)) == ["torch fp32", "torch fp16"]
    assert (
        labels(tuning.candidates("cuda", AVX2, cuda_bf16=True, installed=lambda m: True))[-1] == "torch bf16"
    )


def m(
    engine: str, precision: str, rate: float | None, agreement: float | None = 1.0, **kw: object
) -> Measurement:
    return Measurement(engine, precision, 2, 1, rate, agreement, **kw)  # type: ignore[arg-type]


def test_pick_takes_the_fastest_that_agrees() -> None:
    found = [m("torch", "fp32", 80), m("torch", "bf16", 200), m("onnxruntime", "fp32", 120)]
    assert tuning.pick(found).candidate == Candidate("torch", "bf16")


def test_pick_never_takes_a_candidate_that_disagrees_even_when_faster() -> None:
    found = [
        m("torch", "fp32", 80),
        m("onnxruntime", "int8", 500, agreement=0.98),
        m("onnxruntime", "fp32", 120),
    ]
    assert tuning.pick(found).candidate == Candidate("onnxruntime", "fp32")
    assert (
        tuning.pick([m("torch", "fp32", 80), m("onnxruntime", "int8", 500, agreement=0.99)]).precision
        == "int8"
    )


def test_pick_never_takes_int8_for_features_and_skips_failures() -> None:
    found = [m("torch", "fp32", 80), m("onnxruntime", "int8", 500), m("openvino", "fp32", None, error="boom")]
    assert tuning.pick(found, "classify").precision == "int8"
    assert tuning.pick(found, "features").candidate == tuning.REFERENCE


def test_torch_fp32_is_the_fallback_when_nothing_else_is_usable() -> None:
    found = [m("onnxruntime", "fp32", None, error="no export"), m("torch", "fp32", 70, agreement=1.0)]
    assert tuning.pick(found).candidate == tuning.REFERENCE


class FakeRunner:
    """Logits from a fixed table (optionally with some rows' classes swapped) at a faked speed."""

    def __init__(self, logits: np.ndarray, seconds_per_image: float, wrong_rows: int = 0):
        self.logits = logits.copy()
        self.logits[:wrong_rows] = self.logits[:wrong_rows, ::-1]
        self.seconds_per_image, self.batch_size, self.next = seconds_per_image, 4, 0

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(self.seconds_per_image * len(batch))
        rows = batch[:, 0, 0, 0].astype(int)  # each check image carries its row number
        return np.zeros((len(batch), 1)), self.logits[rows]


def test_measure_checks_the_fastest_first_and_picks_the_fastest_that_agrees_per_purpose() -> None:
    rows = 20
    check = np.zeros((rows, 3, 2, 2), np.uint8)
    check[:, 0, 0, 0] = np.arange(rows)
    logits = np.tile(np.array([5.0, 0.0, -5.0]), (rows, 1))  # decided: class 0 far ahead
    speeds = {
        "torch fp32": 0.004,
        "torch bf16": 0.001,
        "onnxruntime fp32": 0.002,
        "openvino fp32": 0.003,
        "onnxruntime int8": 0.0005,
    }
    wrong = {"torch bf16": 1}  # bf16 flips one decided photo of 20: 95% < 99%

    def build(candidate: Candidate, threads: int, streams: int) -> FakeRunner:
        return FakeRunner(logits, speeds[candidate.label], wrong.get(candidate.label, 0))

    options = [Candidate(*label.split()) for label in speeds]
    measured = tuning.measure(options, build, check, cpus=2, seconds=0.1, decode_seconds=0.001)
    by = {(x.candidate.label, x.streams): x for x in measured}
    assert all(by[(label, 2)].images_per_s for label in speeds), "every candidate is timed"
    assert by[("onnxruntime int8", 2)].images_per_s > by[("onnxruntime fp32", 2)].images_per_s  # type: ignore[operator]
    assert by[("torch bf16", 2)].agreement == pytest.approx(0.95) and not by[("torch bf16", 2)].usable
    assert by[("openvino fp32", 2)].agreement is None, "slower than one that agreed: not checked"
    tuned = tuning.Tuning(measured)
    assert tuned.choice("classify").candidate == Candidate("onnxruntime", "int8")
    assert tuned.choice("features").candidate == Candidate("onnxruntime", "fp32")
    assert ("onnxruntime fp32", 1) in by and ("onnxruntime int8", 1) in by, (
        "the winners at every stream count"
    )
    one = by[("onnxruntime int8", 2)]
    assert one.end_to_end == pytest.approx(2 / (0.001 + 2 / one.images_per_s))  # type: ignore[operator]


def test_near_ties_do_not_count_against_a_candidate() -> None:
    clear = np.tile([5.0, 0.0], (12, 1))
    logits = np.vstack([clear, [[0.01, 0.0]]])
    assert tuning.decided(logits).tolist() == [True] * 12 + [False]
    untrained = np.vstack([clear[:3], np.tile([0.01, 0.0], (20, 1))])
    assert tuning.decided(untrained).all(), "too few decided photos: every photo counts, ties included"


# -- the cache ----------------------------------------------------------------------------------


def test_the_choice_is_remembered_and_measured_again_when_weights_or_versions_change(
    random_resnet18: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_measure(options, build, check, cpus, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        return [Measurement("torch", "fp32", 2, 1, 50.0 + len(calls), 1.0)]

    monkeypatch.setattr(tuning, "measure", fake_measure)
    spec = get_model_spec(random_resnet18)
    options = RunOptions(device="cpu", engine="auto")
    first = engines.auto_tuning(spec, torch.nn.Identity(), options)  # type: ignore[arg-type]
    again = engines.auto_tuning(spec, torch.nn.Identity(), options)  # type: ignore[arg-type]
    assert len(calls) == 1 and first.measured_now and not again.measured_now
    assert again.choice().images_per_s == first.choice().images_per_s
    torch.manual_seed(1)
    torch.save(spec.build().state_dict(), tmp_path / "other.pth")  # type: ignore[misc]
    weights.add(spec, tmp_path / "other.pth")
    engines.auto_tuning(spec, torch.nn.Identity(), options)  # type: ignore[arg-type]
    assert len(calls) == 2, "other weights: measured again"
    engines.auto_tuning(spec, torch.nn.Identity(), options)  # type: ignore[arg-type]
    assert len(calls) == 2
    versions = tuning.library_versions()
    monkeypatch.setattr(tuning, "library_versions", lambda: {**versions, "torch": "99.0"})
    engines.auto_tuning(spec, torch.nn.Identity(), options)  # type: ignore[arg-type]
    assert len(calls) == 3, "another torch: measured again"


def test_a_damaged_tuning_record_is_measured_again(
    random_resnet18: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(
        tuning, "measure", lambda *a, **k: calls.append(1) or [Measurement("torch", "fp32", 2, 1, 10.0, 1.0)]
    )
    spec = get_model_spec(random_resnet18)
    options = RunOptions(device="cpu", engine="auto")
    engines.auto_tuning(spec, torch.nn.Identity(), options)  # type: ignore[arg-type]
    for path in tuning.tuning_dir().glob("resnet18-*.json"):
        path.write_text("{not json")
    engines.auto_tuning(spec, torch.nn.Identity(), options)  # type: ignore[arg-type]
    assert len(calls) == 2


def test_another_cpu_is_another_key(random_resnet18: str) -> None:
    spec = get_model_spec(random_resnet18)
    a = tuning.tuning_key(spec, "cpu", 2, None, cpu_flags="avx2")
    b = tuning.tuning_key(spec, "cpu", 2, None, cpu_flags="avx512_bf16, avx2")
    c = tuning.tuning_key(spec, "cpu", 4, None, cpu_flags="avx2")
    assert len({tuning.choice_path(k) for k in (a, b, c)}) == 3


def test_an_asked_precision_is_run_even_when_it_disagrees_and_int8_features_are_refused() -> None:
    from pixelsift.errors import UsageError

    only_int8 = [m("onnxruntime", "int8", 300, agreement=0.6)]
    assert tuning.pick(only_int8, "classify").precision == "int8", "--precision int8: the user chose it"
    with pytest.raises(UsageError, match="classification only"):
        engines.check_purpose(RunOptions(precision="int8"), "features")
    engines.check_purpose(RunOptions(precision="int8"), "classify")


# -- detectors: agreement by matching boxes ------------------------------------------------------


def _image(*rows: tuple[int, float, tuple[float, float, float, float]]) -> tuple[np.ndarray, ...]:
    """One image's detections from (class id, score, box) rows."""
    boxes = np.array([r[2] for r in rows], np.float64).reshape(-1, 4)
    return boxes, np.array([r[1] for r in rows], np.float64), np.array([r[0] for r in rows], np.int64)


def test_detections_agree_when_the_same_class_overlaps_at_iou_0_9() -> None:
    box = (0.1, 0.1, 0.5, 0.5)
    nudged = (0.1, 0.1, 0.5, 0.52)  # IoU 0.95
    moved = (0.2, 0.1, 0.6, 0.5)  # IoU 0.6
    reference = [_image((1, 0.9, box), (3, 0.8, (0.6, 0.6, 0.9, 0.9)))]
    assert tuning.matched_detections(
        reference, [_image((1, 0.85, nudged), (3, 0.8, (0.6, 0.6, 0.9, 0.9)))]
    ) == (4, 4)
    assert tuning.matched_detections(
        reference, [_image((1, 0.9, moved), (3, 0.8, (0.6, 0.6, 0.9, 0.9)))]
    ) == (2, 4)
    assert tuning.matched_detections(reference, [_image((2, 0.9, box), (3, 0.8, (0.6, 0.6, 0.9, 0.9)))]) == (
        2,
        4,
    )


def test_a_lost_or_a_new_detection_each_cost_one_and_weak_ones_do_not_count() -> None:
    box = (0.1, 0.1, 0.5, 0.5)
    reference = [_image((1, 0.9, box), (5, 0.31, (0.6, 0.6, 0.9, 0.9)))]
    lost = [_image((1, 0.9, box), (5, 0.29, (0.6, 0.6, 0.9, 0.9)))]  # crossed the 0.3 line
    assert tuning.matched_detections(reference, lost) == (2, 3)
    new = [_image((1, 0.9, box), (5, 0.31, (0.6, 0.6, 0.9, 0.9)), (7, 0.5, (0, 0, 0.2, 0.2)))]
    assert tuning.matched_detections(reference, new) == (4, 5)
    weak = [_image((1, 0.9, box), (5, 0.31, (0.6, 0.6, 0.9, 0.9)), (7, 0.2, (0, 0, 0.2, 0.2)))]
    assert tuning.matched_detections(reference, weak) == (4, 4)


def test_a_detector_candidate_needs_95_percent_of_detections_alike() -> None:
    """Through `measure`: the agreement compares decoded detections, and a detector candidate is
    usable at 95% (a classifier needs 99%)."""
    rows = 20
    check = np.zeros((rows, 3, 2, 2), np.uint8)
    check[:, 0, 0, 0] = np.arange(rows)

    class Runner:
        batch_size = 4

        def __init__(self, shift: float, seconds: float):
            self.shift, self.seconds = shift, seconds

        def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            time.sleep(self.seconds * len(batch))
            rows_ = batch[:, 0, 0, 0].astype(np.float64)
            # one "box" per image: x1 moves by `shift` on images 0 and 1 (IoU < 0.9 there)
            x1 = np.where(rows_ < 2, 0.1 + self.shift, 0.1)
            return x1[:, None], np.ones((len(batch), 2))

    def detections(outputs: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, ...]]:
        return [_image((1, 0.9, (float(x1[0]), 0.1, 0.5, 0.5))) for x1 in outputs[0]]

    speeds = {"torch fp32": (0.0, 0.004), "torch bf16": (0.2, 0.001), "onnxruntime fp32": (0.0, 0.002)}
    agreement = tuning.detection_agreement(detections)
    assert agreement.minimum == 0.95

    def build(candidate: Candidate, threads: int, streams: int) -> Runner:
        return Runner(*speeds[candidate.label])

    options = [Candidate(*label.split()) for label in speeds]
    measured = tuning.measure(options, build, check, 2, ("detect",), seconds=0.1, agreement=agreement)
    by = {(m.candidate.label, m.streams): m for m in measured}
    assert by[("torch bf16", 2)].agreement == pytest.approx(36 / 40)  # 2 of 20 images lose their box
    assert not by[("torch bf16", 2)].usable
    assert tuning.Tuning(measured).choice("detect").candidate == Candidate("onnxruntime", "fp32")
    assert "boxes same" in tuning.Tuning(measured).table("detect")
