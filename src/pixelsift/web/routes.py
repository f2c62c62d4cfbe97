"""REST endpoints. Each one is a thin wrapper over a library function, returning the CLI's JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from .app import ApiError, WebConfig, jpeg_bytes, read_upload


class Prediction(BaseModel):
    label: str
    score: float


class ClassifyResponse(BaseModel):
    path: str
    predictions: list[Prediction]


class ModelRecord(BaseModel):
    name: str
    task: str
    source: str
    description: str
    licence: str
    input_size: int | None = None
    embed_dim: int | None = None
    imagenet_top1: float | None = None
    weights: str
    default: bool = False


def _config(request: Request) -> WebConfig:
    return request.app.state.config


def add_routes(app: FastAPI) -> None:
    @app.post("/api/classify", response_model=ClassifyResponse, tags=["classify"])
    def classify_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[str | None, Query(description="model name (default: the server's)")] = None,
        k: Annotated[int, Query(ge=1, le=1000, description="classes to return")] = 5,
    ) -> dict[str, Any]:
        """Top-k classes of one uploaded photo: one element of `pixelsift classify --format json`."""
        from ..classify import Classifier

        config = _config(request)
        image = read_upload(file, config)
        with request.app.state.inference_lock:
            clf = Classifier(model or config.model, device=config.device, precision=config.precision)
            result = clf.classify_image(image, top_k=k, name=file.filename or "upload")
        return result.to_dict()

    @app.get("/api/models", response_model=list[ModelRecord], tags=["models"])
    def models() -> list[dict[str, Any]]:
        """The model registry, as `pixelsift models --format json`."""
        from ..cli.models import describe
        from ..models.registry import list_models

        return [describe(spec) for spec in list_models()]

    @app.post(
        "/api/detect",
        tags=["detect"],
        responses={200: {"content": {"application/json": {}, "image/jpeg": {}}}},
    )
    def detect_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[str | None, Query(description="detector (default: the best available)")] = None,
        conf: Annotated[float, Query(ge=0.0, le=1.0, description="minimum score")] = 0.25,
        annotated: Annotated[int, Query(ge=0, le=1, description="1: return the annotated JPEG")] = 0,
    ) -> Any:
        """Objects in one uploaded photo, as one element of `pixelsift detect --format json`."""
        config = _config(request)
        image = read_upload(file, config)
        try:
            from ..detect import load_detector
        except ImportError:
            raise ApiError(503, "object detection is not available in this installation") from None
        with request.app.state.inference_lock:
            detector = load_detector(model or config.detector, device=config.device, conf=conf)
            detections = detector.detect_image(image)
        if annotated:
            from ..detect import draw_detections

            return Response(jpeg_bytes(draw_detections(image, detections)), media_type="image/jpeg")
        width, height = image.size
        return {
            "path": file.filename or "upload",
            "width": width,
            "height": height,
            "detections": detections.to_dict()["detections"],
        }
