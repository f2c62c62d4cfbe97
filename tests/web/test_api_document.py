"""The OpenAPI document lists every status each route answers (and no 422, which the app never sends);
a 405 names the allowed methods."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelsift.library import PhotoIndex
from pixelsift.web import WebConfig, create_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    base = tmp_path_factory.mktemp("doc")
    photos = base / "photos"
    photos.mkdir()
    shutil.copy(REPO / "samples" / "coffee.png", photos / "coffee.png")
    with PhotoIndex(base / "index.db") as index:
        index.update(photos, detector="none")
    return TestClient(
        base_url="http://127.0.0.1",
        app=create_app(WebConfig(db=base / "index.db", max_upload_bytes=64 * 1024)),
    )


CASES = [
    ("post", "/api/classify", {"files": {"file": ("x.jpg", b"not an image", "image/jpeg")}}, 415),
    ("post", "/api/classify", {"files": {"file": ("x.jpg", b"\0" * 100_000, "image/jpeg")}}, 413),
    ("post", "/api/classify?k=0", {"files": {"file": ("x.jpg", b"x", "image/jpeg")}}, 400),
    ("post", "/api/detect", {"files": {"file": ("x.jpg", b"not an image", "image/jpeg")}}, 415),
    ("get", "/api/search?q=cat&n=0", {}, 400),
    ("get", "/api/similar/999999", {}, 404),
    ("get", "/api/photos/999999", {}, 404),
    ("get", "/api/photos/999999/thumbnail", {}, 404),
    ("get", "/api/photos/abc/info", {}, 404),
]


@pytest.mark.parametrize(("method", "url", "request_args", "status"), CASES)
def test_each_status_a_route_answers_is_in_the_document(
    client: TestClient, method: str, url: str, request_args: dict, status: int
) -> None:
    response = getattr(client, method)(url, **request_args)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status and response.json()["error"]
    document = client.get("/openapi.json").json()
    route = url.split("?")[0]
    template = next(p for p in document["paths"] if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), route))
    documented = document["paths"][template][method]["responses"]
    assert str(status) in documented, (template, sorted(documented))


def test_no_route_documents_a_422(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)


def test_a_405_names_the_allowed_methods(client: TestClient) -> None:
    response = client.get("/api/classify")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
