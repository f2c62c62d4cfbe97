"""`pixelsift doctor` names what is missing or broken and the command that fixes it, in text and JSON:
a missing detector backend and a second package writing `cv2` (both faked) are reported, and a
broken part makes the exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pixelsift.doctor as doctor
from pixelsift.cli import main


@pytest.fixture
def two_cv2_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    providers = {"opencv-python": "4.13.0.92", "opencv-python-headless": "4.13.0.92"}
    monkeypatch.setattr(doctor, "module_providers", lambda module: providers if module == "cv2" else {})


@pytest.fixture
def no_ultralytics(monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.is_installed
    monkeypatch.setattr(doctor, "is_installed", lambda module: module != "ultralytics" and real(module))


def test_a_second_cv2_provider_is_broken_with_the_command_that_keeps_one(two_cv2_providers: None) -> None:
    check = doctor.opencv_check()
    assert check.status == "broken"
    assert "opencv-python 4.13.0.92" in check.detail and "opencv-python-headless 4.13.0.92" in check.detail
    assert check.fix == (
        "pip uninstall -y opencv-python && pip install --force-reinstall --no-deps "
        "opencv-python-headless==4.13.0.92"
    )


def test_no_cv2_is_missing_not_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "module_providers", lambda module: {})
    check = doctor.opencv_check()
    assert (check.status, check.fix) == ("missing", "pip install 'pixelsift[opencv]'")


def test_opencv_5_says_it_reads_no_tensorflow_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeCv2:
        __version__ = "5.1.0"

    monkeypatch.setattr(doctor, "module_providers", lambda module: {"opencv-python-headless": "5.1.0.95"})
    monkeypatch.setattr(doctor.importlib, "import_module", lambda name: FakeCv2())
    check = doctor.opencv_check()
    assert check.status == "info" and "no TensorFlow (.pb)" in check.detail


def test_a_package_that_does_not_import_is_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(module: str) -> None:
        raise ImportError("libfoo.so.1: cannot open shared object file")

    check = doctor.package_check("batch", "json", "pyarrow", "parquet", "Parquet", importer=fail)
    assert check.status == "broken" and "libfoo.so.1" in check.detail
    assert check.fix == "pip install --force-reinstall 'pixelsift[parquet]'"


def test_text_report_names_missing_backend_and_second_cv2_with_fixes(
    two_cv2_providers: None, no_ultralytics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--no-load"]) == 1  # two cv2 providers: broken
    out = capsys.readouterr().out
    ultralytics = next(line for line in out.splitlines() if "ultralytics" in line)
    assert ultralytics.split()[0] == "missing"
    assert "fix: pip install 'pixelsift[yolo]'" in out
    cv2_line = next(line for line in out.splitlines() if " cv2 " in line)
    assert cv2_line.split()[0] == "BROKEN"
    assert "fix: pip uninstall -y opencv-python" in out
    parts = (
        "engines",
        "detectors",
        "opencv",
        "models",
        "ocr",
        "batch",
        "notebooks",
        "browser",
        "gpu",
        "cache",
    )
    for part in parts:
        assert part in out.splitlines(), part
    assert "fix what is BROKEN" in out.splitlines()[-1]


def test_json_report_is_the_same_checks(
    two_cv2_providers: None, no_ultralytics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--no-load", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["ultralytics"]["status"] == "missing"
    assert by_name["ultralytics"]["fix"] == "pip install 'pixelsift[yolo]'"
    assert by_name["cv2"]["status"] == "broken" and by_name["cv2"]["part"] == "opencv"
    assert {"torch", "onnxruntime", "openvino", "flags", "pyarrow", "ray", "chromium", "weights"} <= set(
        by_name
    )
    assert report["counts"]["broken"] == sum(c["status"] == "broken" for c in report["checks"])


def test_weights_cache_reports_size_free_disk_and_an_unwritable_home(
    home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelsift.config import get_settings

    folder = get_settings().weights_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "w.bin").write_bytes(b"\0" * 3_000_000)
    check = doctor.cache_check()
    assert check.status == "ok" and "3 MB" in check.detail and "GB free" in check.detail
    monkeypatch.setattr(doctor, "_writable", lambda folder: False)
    broken = doctor.cache_check()
    assert broken.status == "broken" and broken.fix is not None and "PIXELSIFT_HOME" in broken.fix


def test_without_segmentation_weights_doctor_names_the_fetch_and_stays_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelsift.doctor import detector_checks

    monkeypatch.setenv("PIXELSIFT_HOME", str(tmp_path / "home"))
    segmenters = [c for c in detector_checks(load=False) if c.part == "segmenters"]
    assert [(c.status, c.fix) for c in segmenters] == [
        ("missing", "pixelsift models fetch maskrcnn_resnet50_fpn_v2")
    ]
