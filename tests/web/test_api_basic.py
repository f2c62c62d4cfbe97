"""REST API: classify and models endpoints, limits and error codes (FastAPI's test client)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixelsift.web import WebConfig, create_app


@pytest.fixture
def client() -> TestClient:
    return TestClient(
        base_url="http://127.0.0.1", app=create_app(WebConfig(max_upload_bytes=2 * 1024 * 1024))
    )


def png_bytes(size: tuple[int, int] = (32, 32), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def test_classify_returns_the_cli_json_object(client: TestClient, samples: Path) -> None:
    data = (samples / "coffee.png").read_bytes()
    response = client.post("/api/classify?k=3", files={"file": ("coffee.png", data, "image/png")})
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == "coffee.png"
    assert body["predictions"][0]["label"] == "espresso"
    assert len(body["predictions"]) == 3
    from pixelsift.runtime.classify import classify

    cli_like = classify(samples / "coffee.png", top_k=3)[0].to_dict()
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in cli_like["predictions"]]
    assert body["predictions"][0]["score"] == pytest.approx(cli_like["predictions"][0]["score"], rel=1e-4)


def test_not_an_image_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/classify", files={"file": ("notes.jpg", b"hello, not a photo", "image/jpeg")}
    )
    assert response.status_code == 415
    assert "not a usable image" in response.json()["error"]


def test_upload_over_the_limit_is_413(client: TestClient) -> None:
    big = b"\0" * (3 * 1024 * 1024)
    response = client.post("/api/classify", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413
    assert "over the limit of 2 MB" in response.json()["error"]


def test_chunked_upload_without_length_is_still_limited(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for _ in range(40):
            yield b"x" * (100 * 1024)
        yield b"\r\n--xyz--\r\n"

    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    response = client.post("/api/classify", content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_decompression_bomb_is_413(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")
    response = client.post("/api/classify", files={"file": ("bomb.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 413
    assert "pixels" in response.json()["error"]


def test_bad_parameters_are_400(client: TestClient) -> None:
    response = client.post("/api/classify?k=0", files={"file": ("a.png", png_bytes(), "image/png")})
    assert response.status_code == 400 and "k" in response.json()["error"]
    response = client.post("/api/classify?model=resnet5", files={"file": ("a.png", png_bytes(), "image/png")})
    assert response.status_code == 400 and "resnet50" in response.json()["error"]
    response = client.post("/api/classify")
    assert response.status_code == 400


def test_missing_weights_is_503_with_the_fix(client: TestClient, home: Path) -> None:
    response = client.post("/api/classify?model=vgg16", files={"file": ("a.png", png_bytes(), "image/png")})
    assert response.status_code == 503
    assert "pixelsift models fetch vgg16" in response.json()["error"]


def test_models_lists_the_registry(client: TestClient) -> None:
    records = client.get("/api/models").json()
    lite = next(r for r in records if r["name"] == "efficientnet_lite0")
    assert lite["weights"] == "packaged" and lite["default"] is True and lite["embed_dim"] == 1280


def test_page_docs_and_openapi_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>pixelsift</title>" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "pixelsift"
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower(), "the docs work offline"
    for url in ("/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css"):
        assert url in docs.text and client.get(url).status_code == 200, url
    redoc = client.get("/redoc")
    assert redoc.status_code == 200 and "/docs-static/redoc.standalone.js" in redoc.text
    assert "cdn" not in redoc.text.lower() and "fonts.googleapis" not in redoc.text
    assert client.get("/static/").status_code == 404, "no directory listings"


def test_cors_is_off_by_default_and_on_when_asked(samples: Path) -> None:
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    off = TestClient(base_url="http://127.0.0.1", app=create_app()).options("/api/classify", headers=headers)
    assert "access-control-allow-origin" not in off.headers
    on = TestClient(
        base_url="http://127.0.0.1", app=create_app(WebConfig(cors_origins=["http://app.example"]))
    )
    response = on.options("/api/classify", headers={**headers, "Origin": "http://app.example"})
    assert response.headers.get("access-control-allow-origin") == "http://app.example"


def test_the_server_classifies_with_the_engine_it_was_started_with(samples: Path) -> None:
    pytest.importorskip("onnxruntime")
    from pixelsift.cli import build_parser

    args = build_parser().parse_args(["serve", "--engine", "onnxruntime", "--threads", "1"])
    assert (args.engine, args.threads, args.model) == ("onnxruntime", 1, "efficientnet_lite0")
    from pixelsift.runtime import loaded
    from pixelsift.runtime.options import RunOptions

    loaded.clear_model_cache()
    client = TestClient(
        base_url="http://127.0.0.1",
        app=create_app(WebConfig(run_options=RunOptions(engine=args.engine, threads=args.threads))),
    )
    data = (samples / "coffee.png").read_bytes()
    response = client.post("/api/classify?k=1", files={"file": ("coffee.png", data, "image/png")})
    assert response.status_code == 200 and response.json()["predictions"][0]["label"] == "espresso"
    [(key, model)] = loaded._cache.items()  # the one classifier that answered
    # (name, purpose, device, precision, threads, streams, engine)
    assert (key[1], key[4], key[-1]) == (
        "classify",
        1,
        "onnxruntime",
    ) and "onnxruntime" in model.runner.describe()


def test_the_server_runs_one_stream_with_every_thread_unless_told() -> None:
    """One photo at a time behind the inference lock: a single stream answers soonest."""
    from pixelsift.cli import build_parser
    from pixelsift.cli.serve import server_run_options

    assert server_run_options(build_parser().parse_args(["serve"])).streams == 1
    assert server_run_options(build_parser().parse_args(["serve", "--streams", "2"])).streams == 2
