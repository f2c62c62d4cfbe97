"""Every pixelsift error type has an HTTP status, and the web app answers it (never a 500)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelsift import errors
from pixelsift.web import WebConfig, create_app

ERROR_TYPES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.PixelsiftError) and cls.__module__ == errors.__name__
]


def _instance(cls: type[errors.PixelsiftError]) -> errors.PixelsiftError:
    examples: dict[type, tuple[object, ...]] = {
        errors.UnknownModelError: ("no_such_model",),
        errors.WeightsMissingError: ("m", "m.pth", Path("/cache/m.pth"), "not downloaded"),
        errors.MissingDependencyError: ("onnxruntime", "onnx", "the onnxruntime engine"),
        errors.ImageError: ("a.jpg", "not an image"),
        errors.PixelLimitError: ("big.png", "too many pixels"),
        errors.EmbeddingError: ([("a.jpg", "corrupt")],),
        errors.ApiError: (404, "no such photo"),
    }
    return cls(*examples.get(cls, (f"something about {cls.__name__}",)))  # type: ignore[arg-type]


def test_every_error_type_is_found() -> None:
    names = {cls.__name__ for cls in ERROR_TYPES}
    assert {"ModelFileError", "WeightsInvalidError", "LibraryFileError", "ApiError", "UsageError"} <= names


@pytest.mark.parametrize("cls", ERROR_TYPES, ids=lambda cls: cls.__name__)
def test_each_error_type_is_answered_with_its_status_and_message(cls: type[errors.PixelsiftError]) -> None:
    exc = _instance(cls)
    status = exc.http_status
    assert 400 <= status < 500 or status == 503, f"{cls.__name__} would be a {status}"
    app = create_app(WebConfig())

    @app.get("/raise")
    def raise_it() -> None:
        raise exc

    response = TestClient(base_url="http://127.0.0.1", app=app, raise_server_exceptions=False).get("/raise")
    assert response.status_code == status
    assert response.json() == {"error": str(exc), "status": status}
