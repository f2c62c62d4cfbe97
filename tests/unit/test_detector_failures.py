"""A detector that cannot load is one clear error (never a backend's traceback), `auto` takes another
usable detector with a note, and a backend that cannot run here is marked unusable with its fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import pixelsift.detect.api as api
from pixelsift.errors import DetectorUnavailableError
from pixelsift.library.labelers import choose_detector
from pixelsift.models.records import DetectorSpec
from pixelsift.models.registry import get_model_spec
from pixelsift.runtime.options import RunOptions

OPENCV5_ERROR = (
    "OpenCV(5.1.0) /io/opencv/modules/dnn/src/dnn_read.cpp:52: error: (-2:Unspecified error) "
    "TensorFlow importer has been removed in function 'readNet'\n"
)


def ssd() -> DetectorSpec:
    spec = get_model_spec("ssd_mobilenet_v2_coco")
    assert isinstance(spec, DetectorSpec)
    return spec


def fake_detectors(monkeypatch: pytest.MonkeyPatch, broken: set[str], ready: list[DetectorSpec]) -> None:
    """Detectors in `broken` raise OpenCV 5's error when they load; the others load as a marker."""

    def loader(backend: str) -> Any:
        def load(spec: DetectorSpec, *args: Any, **kwargs: Any) -> Any:
            if spec.name in broken:
                raise RuntimeError(OPENCV5_ERROR)
            return type(
                "Loaded", (), {"name": spec.name, "agnostic": False, "describe": lambda self: spec.name}
            )()

        return load

    monkeypatch.setattr(api, "backend_loader", loader)
    monkeypatch.setattr(api, "backend_problem", lambda spec: None)
    monkeypatch.setattr(api, "detector_readiness", lambda: (ready, {}))


def test_a_backend_failure_is_one_line_naming_the_detector_and_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_detectors(monkeypatch, {"ssd_mobilenet_v2_coco"}, [ssd()])
    with pytest.raises(DetectorUnavailableError) as caught:
        api.load_detector("ssd_mobilenet_v2_coco")
    message = str(caught.value)
    assert message.startswith(
        "detector ssd_mobilenet_v2_coco failed to load: TensorFlow importer has been removed"
    )
    assert "\n" not in message and "pixelsift doctor" in message
    assert caught.value.exit_code == 1 and caught.value.http_status == 503


def test_auto_takes_the_next_usable_detector_with_a_note(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    other = get_model_spec("yolov8n")
    assert isinstance(other, DetectorSpec)
    fake_detectors(monkeypatch, {"ssd_mobilenet_v2_coco"}, [ssd(), other])
    with caplog.at_level(logging.WARNING, logger="pixelsift"):
        detector = choose_detector("auto", RunOptions())
    assert detector.name == "yolov8n"
    assert "ssd_mobilenet_v2_coco" in caplog.text and "indexing with yolov8n instead" in caplog.text


def test_auto_with_every_detector_broken_is_an_error_naming_the_way_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_detectors(monkeypatch, {"ssd_mobilenet_v2_coco"}, [ssd()])
    with pytest.raises(DetectorUnavailableError, match="--detector none"):
        choose_detector("auto", RunOptions())


def test_no_detector_installed_indexes_without_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_detectors(monkeypatch, set(), [])
    with caplog.at_level(logging.WARNING, logger="pixelsift"):
        assert choose_detector("auto", RunOptions()) is None
    assert "no object detector is installed" in caplog.text


def test_opencv_5_makes_a_tensorflow_graph_detector_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "module_providers", lambda module: {"opencv-python-headless": "5.1.0.95"})
    monkeypatch.setattr(api, "is_installed", lambda module: True)
    spec = DetectorSpec(
        name="my_tf_ssd",
        source="test",
        description="a TF graph",
        licence="-",
        backend="opencv_ssd",
        imgsz=300,
        requires=("cv2",),
    )
    problem = api.backend_problem(spec)
    assert problem is not None and "5.1.0.95" in problem and "opencv-python-headless>=4.8,<5" in problem
    assert api.runnable_problem(spec) == problem
    monkeypatch.setattr(api, "module_providers", lambda module: {"opencv-python-headless": "4.13.0.92"})
    assert api.backend_problem(spec) is None


def test_models_listing_marks_an_unusable_detector(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import pixelsift.cli.models as cli_models
    from pixelsift.cli import main

    monkeypatch.setattr(
        cli_models,
        "runnable_problem",
        lambda spec: "needs X: pip install y" if spec.name == "yolov8n" else None,
    )
    assert main(["models", "--task", "detect", "--format", "json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["yolov8n"]["usable"] is False and records["yolov8n"]["problem"] == "needs X: pip install y"
    assert records["ssd_mobilenet_v2_coco"]["usable"] is True
    assert main(["models", "--task", "detect"]) == 0
    out = capsys.readouterr().out
    assert "yolov8n !" in out and "! yolov8n cannot run on this machine: needs X: pip install y" in out


def test_a_tensorflow_graph_on_opencv_5_is_one_clear_error(tmp_path: Any) -> None:
    from pixelsift.detect.backends.opencv_dnn import read_tensorflow
    from pixelsift.errors import UsageError

    class FakeCv2:
        __version__ = "5.1.0"

        class dnn:
            @staticmethod
            def readNet(*args: Any) -> None:
                raise AssertionError("never called on OpenCV 5")

    with pytest.raises(UsageError) as caught:
        read_tensorflow(FakeCv2, tmp_path / "faster_rcnn.pb", tmp_path / "faster_rcnn.pbtxt")
    message = str(caught.value)
    assert "OpenCV 5.1.0 cannot read TensorFlow graphs" in message
    assert "pip install 'opencv-python-headless>=4.8,<5'" in message and "\n" not in message


def test_a_graph_of_another_family_without_opencv_names_the_fix(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelsift.errors import UsageError

    graph = tmp_path / "other.pb"
    graph.write_bytes(b"\x0a\x05hello")  # a protobuf field, but no graph of SSD-MobileNet-v2's
    monkeypatch.setattr(api, "is_installed", lambda module: module != "cv2")
    with pytest.raises(UsageError) as caught:
        api.load_detector(str(graph))
    message = str(caught.value)
    assert str(graph) in message and "opencv-python-headless>=4.8,<5" in message
