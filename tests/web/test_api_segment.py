"""REST API: /api/segment answers like `pixelsift segment --format json` (shapes as COCO RLE and
polygons), returns the annotated JPEG on request, loads its segmenter once, and says 503 with the fetch
command when no segmenter's weights are on the server."""

from __future__ import annotations

import importlib.util
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from helpers import colour_segmenter, shapes_photo
from pixelsift.detect.masks import mask_iou, rle_decode
from pixelsift.web import WebConfig, create_app

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("cv2") is None,
    reason="needs pip install 'pixelsift[yolo]'",
)


@pytest.fixture
def client() -> TestClient:
    return TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig()))


def photo_upload() -> tuple[dict[str, tuple[str, bytes, str]], dict[str, np.ndarray]]:
    photo, truth = shapes_photo(480, 320)
    data = io.BytesIO()
    photo.save(data, format="PNG")
    return {"file": ("shapes.png", data.getvalue(), "image/png")}, truth


def test_segment_answers_with_each_objects_shape(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import pixelsift.web.routes as routes

    loads: list[str | None] = []
    segmenter = colour_segmenter()

    def load(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        loads.append(model)
        return segmenter

    monkeypatch.setattr(routes, "load_segmenter", load)
    files, truth = photo_upload()
    body = client.post("/api/segment", files=files).json()
    assert body["path"] == "shapes.png" and body["summary"] == "1 dog, 1 car"
    for obj in body["detections"]:
        assert mask_iou(rle_decode(obj["rle"]), truth[obj["label"]]) >= 0.8
        assert obj["polygons"] and obj["area"] == pytest.approx(truth[obj["label"]].mean(), abs=0.01)
    picture = client.post("/api/segment?annotated=1", files=files)
    assert picture.headers["content-type"] == "image/jpeg"
    drawn = np.asarray(Image.open(io.BytesIO(picture.content)).convert("RGB"), np.int16)
    original = np.asarray(shapes_photo(480, 320)[0], np.int16)
    assert np.abs(drawn[truth["car"]] - original[truth["car"]]).mean() > 20  # the car is tinted
    assert loads == [None], "the segmenter is loaded once and reused"


def test_without_segmentation_weights_the_answer_is_503_with_the_fetch_command(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PIXELSIFT_HOME", str(tmp_path / "home"))
    files, _ = photo_upload()
    response = client.post("/api/segment", files=files)
    assert response.status_code == 503
    assert "pixelsift models fetch maskrcnn_resnet50_fpn_v2" in response.json()["error"]


def test_a_model_that_does_not_segment_is_bad_request(client: TestClient) -> None:
    files, _ = photo_upload()
    response = client.post("/api/segment?model=resnet18", files=files)
    assert response.status_code == 400
    assert "pixelsift models --task segment" in response.json()["error"]
