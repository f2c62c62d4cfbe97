"""POST /api/explain: the JSON of `pixelsift explain`, or the overlay PNG; bad input is 4xx."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixelsift.web import WebConfig, create_app

pytest.importorskip("pytorch_grad_cam")


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(
        base_url="http://127.0.0.1", app=create_app(WebConfig(max_upload_bytes=2 * 1024 * 1024))
    )


def upload(client: TestClient, path: Path, query: str = "") -> object:
    return client.post(f"/api/explain{query}", files={"file": (path.name, path.read_bytes(), "image/png")})


def test_explain_returns_the_cli_json(client: TestClient, samples: Path) -> None:
    response = upload(client, samples / "coffee.png", "?k=2")
    assert response.status_code == 200  # type: ignore[attr-defined]
    rows = response.json()  # type: ignore[attr-defined]
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["label"] == "espresso"
    x1, y1, x2, y2 = rows[0]["box"]
    assert 0 <= x1 < x2 <= 600 and 0 <= y1 < y2 <= 400 and rows[0]["method"] == "gradcam"


def test_annotated_is_the_overlay_png(client: TestClient, samples: Path) -> None:
    response = upload(client, samples / "coffee.png", "?annotated=1&label=cup")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"  # type: ignore[attr-defined]
    picture = Image.open(io.BytesIO(response.content))  # type: ignore[attr-defined]
    assert picture.size == (600, 400) and picture.mode == "RGB"


@pytest.mark.parametrize(
    ("query", "status"), [("?label=spaceship", 400), ("?method=magic", 400), ("?model=nosuchmodel", 400)]
)
def test_bad_requests_are_400(client: TestClient, samples: Path, query: str, status: int) -> None:
    response = upload(client, samples / "coffee.png", query)
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.json()["error"]  # type: ignore[attr-defined]


def test_not_an_image_is_415(client: TestClient) -> None:
    response = client.post("/api/explain", files={"file": ("x.jpg", b"hello", "image/jpeg")})
    assert response.status_code == 415


def test_scorecam_is_refused_on_the_web_with_the_cli_command(client: TestClient, samples: Path) -> None:
    import time

    started = time.monotonic()
    response = upload(client, samples / "coffee.png", "?method=scorecam")
    assert time.monotonic() - started < 30  # refused, not computed (146 s on 2 cores)
    assert response.status_code == 400  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert "not served on the web" in error and "pixelsift explain PHOTO --method scorecam" in error
