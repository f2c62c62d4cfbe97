"""REST endpoints. Each one is a thin wrapper over a library function, returning the CLI's JSON."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from pixelsift.detect import draw_detections, load_detector, load_segmenter
from pixelsift.detect.api import default_model_names, runnable_problem
from pixelsift.errors import ApiError, DetectorUnavailableError, PixelsiftError, short_reason
from pixelsift.library.duplicates import NEAR_THRESHOLD
from pixelsift.library.labelers import NONE as NO_DETECTION
from pixelsift.models.listing import model_record
from pixelsift.models.registry import DEFAULT_TOP_K, get_model_spec, list_models
from pixelsift.web.config import WebConfig
from pixelsift.web.library_access import LibraryAccess
from pixelsift.web.uploads import decode_upload, jpeg_bytes, png_bytes, read_upload, read_upload_data

log = logging.getLogger("pixelsift")


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
    usable: bool = True  # false: it cannot run on this machine; `problem` says why and names the fix
    problem: str | None = None


class ErrorBody(BaseModel):
    """Every error answer: the one-line message the CLI would print, and the status again."""

    error: str
    status: int


_MEANING = {
    400: "bad parameters (the message names them)",
    404: "no such photo, or no photo index to search",
    413: "the upload or the image is over the size limit",
    415: "the upload is not a usable image",
    503: "the server cannot do this now (a model or detector is not available here)",
}


def validation_as_400(schema: dict[str, Any]) -> dict[str, Any]:
    """The app answers bad parameters with 400 (`ErrorBody`), never FastAPI's 422: say so in the document."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": _MEANING[400],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
    return schema


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route answers, for the OpenAPI document."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


def _config(request: Request) -> WebConfig:
    return request.app.state.config


def add_routes(app: FastAPI) -> None:
    @app.post(
        "/api/classify",
        response_model=ClassifyResponse,
        tags=["classify"],
        responses=errors(400, 413, 415, 503),
    )
    def classify_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[str | None, Query(description="model name (default: the server's)")] = None,
        k: Annotated[int, Query(ge=1, le=1000, description="classes to return")] = DEFAULT_TOP_K,
    ) -> dict[str, Any]:
        """Top-k classes of one uploaded photo: one element of `pixelsift classify --format json`."""
        from pixelsift.runtime.classify import Classifier  # imports torch: not before the first photo

        config = _config(request)
        data = read_upload_data(file, config)
        name = file.filename or "upload"
        with request.app.state.inference_lock:
            clf = Classifier(model or config.model, config.run_options)
            # decoded as `pixelsift classify` and the index decode it: the same file, the same scores
            image = decode_upload(data, config, name, min_size=clf.model.preprocessing.resize)
            result = clf.classify_image(image, top_k=k, name=name)
        return result.to_dict()

    @app.get("/api/models", response_model=list[ModelRecord], tags=["models"])
    def models(request: Request) -> list[dict[str, Any]]:
        """The model registry, as `pixelsift models --format json`; `default` marks what this server uses
        when a request names no model (no detector at all under `serve --detector none`)."""
        config = _config(request)
        defaults = {**default_model_names(), "classify": config.model}
        if config.detector == NO_DETECTION:
            defaults.pop("detect", None)
        elif config.detector:
            defaults["detect"] = config.detector
        return [model_record(spec, defaults, runnable_problem(spec)) for spec in list_models()]

    @app.post(
        "/api/detect",
        tags=["detect"],
        responses={
            200: {"content": {"application/json": {}, "image/jpeg": {}}},
            **errors(400, 413, 415, 503),
        },
    )
    def detect_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[str | None, Query(description="detector (default: the best available)")] = None,
        conf: Annotated[float, Query(ge=0.0, le=1.0, description="minimum score")] = 0.25,
        annotated: Annotated[int, Query(ge=0, le=1, description="1: return the annotated JPEG")] = 0,
        agnostic_nms: Annotated[
            int, Query(ge=0, le=1, description="1: boxes of different classes suppress each other")
        ] = 0,
    ) -> Any:
        """Objects in one uploaded photo: one element of `pixelsift detect --format json`, plus the
        detector's name and the summary line ("1 person, 2 cars")."""
        config = _config(request)
        if model is None and config.detector == NO_DETECTION:
            raise DetectorUnavailableError(
                "this server runs without object detection (`pixelsift serve --detector none`): name a "
                "detector with model=NAME, or start it without --detector none"
            )
        return _run_detector(request, file, model or config.detector, conf, annotated, agnostic_nms, False)

    @app.post(
        "/api/segment",
        tags=["detect"],
        responses={
            200: {"content": {"application/json": {}, "image/jpeg": {}}},
            **errors(400, 413, 415, 503),
        },
    )
    def segment_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[
            str | None, Query(description="instance segmenter (default: the best whose weights are here)")
        ] = None,
        conf: Annotated[float, Query(ge=0.0, le=1.0, description="minimum score")] = 0.25,
        annotated: Annotated[int, Query(ge=0, le=1, description="1: return the annotated JPEG")] = 0,
        agnostic_nms: Annotated[
            int, Query(ge=0, le=1, description="1: objects of different classes suppress each other")
        ] = 0,
    ) -> Any:
        """The objects in one uploaded photo and their shapes: one element of `pixelsift segment --format
        json` (each object with its area, polygons and COCO RLE mask), plus the segmenter's name and the
        summary line. A 503 names the fetch command when no segmenter's weights are on the server."""
        return _run_detector(request, file, model, conf, annotated, agnostic_nms, True)

    @app.post(
        "/api/ocr",
        tags=["ocr"],
        responses={
            200: {"content": {"application/json": {}, "image/jpeg": {}}},
            **errors(400, 413, 415, 503),
        },
    )
    def ocr_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo")],
        annotated: Annotated[
            int, Query(ge=0, le=1, description="1: return the photo with the lines drawn, as a JPEG")
        ] = 0,
    ) -> Any:
        """The text in one uploaded photo: one element of `pixelsift ocr --format json` (its lines with
        box, four corners, score and words, and all the text), or the photo with the lines drawn."""
        return _read_upload_text(request, file, annotated)


def _run_detector(
    request: Request,
    file: UploadFile,
    model: str | None,
    conf: float,
    annotated: int,
    agnostic_nms: int,
    shapes: bool,
) -> Any:
    """One uploaded photo through a detector (or, `shapes`, an instance segmenter), each loaded once
    per server and model and reused: the JSON of the CLI's one file, or the annotated JPEG."""
    config = _config(request)
    image = read_upload(file, config)
    if model is not None:
        get_model_spec(model)  # registry names only: a client never makes the server open a path
    loaded = request.app.state.segmenters if shapes else request.app.state.detectors
    with request.app.state.inference_lock:
        detector = loaded.get(model)
        if detector is None:  # load each model once; later requests reuse it
            load = load_segmenter if shapes else load_detector
            detector = load(model, config.run_options, conf=conf)  # fails as a 503
            loaded[model] = detector
        detector.conf = conf  # read at post-processing time, so one loaded detector serves every conf
        detector.agnostic = bool(agnostic_nms)
        try:
            result = detector.detect_result(image, path=file.filename or "upload")
        except PixelsiftError:
            raise
        except Exception as exc:  # the backend's own failure: a JSON 503 with the reason, never a 500
            log.exception("detector %s failed on an upload", detector.name)
            raise DetectorUnavailableError(f"detector {detector.name} failed: {short_reason(exc)}") from exc
    if annotated:
        assert result.detections is not None
        return Response(jpeg_bytes(draw_detections(image, result.detections)), media_type="image/jpeg")
    return {"model": detector.name, "summary": result.summary(), **result.to_dict()}


def _read_upload_text(request: Request, file: UploadFile, annotated: int) -> Any:
    """One uploaded photo's text through the server's text reader (loaded once, on first use)."""
    from pixelsift.ocr.draw import draw_text_lines  # rapidocr and onnxruntime load with the reader
    from pixelsift.ocr.reader import TextReader
    from pixelsift.ocr.results import TextReading

    config = _config(request)
    image = read_upload(file, config)
    with request.app.state.inference_lock:
        if request.app.state.reader is None:
            request.app.state.reader = TextReader(config.run_options)  # a missing package: a 503
        lines = request.app.state.reader.read_image(image)
    if annotated:
        return Response(jpeg_bytes(draw_text_lines(image, lines)), media_type="image/jpeg")
    width, height = image.info.get("full_size", image.size)
    return TextReading(file.filename or "upload", lines, width, height).to_dict()


class LibraryStats(BaseModel):
    photos: int
    failed: int
    model: str | None = None
    detector: str | None = None
    without_detection: int
    text_image_model: str | None = None
    folder: str | None = None  # the library folder's name (never the server's whole path)
    last_indexed: float | None = None  # seconds since the epoch


class PhotoPage(BaseModel):
    total: int  # photos that pass the filters
    offset: int
    photos: list[PhotoResult]


class ExplanationResponse(BaseModel):
    path: str
    label: str
    score: float
    rank: int
    method: str
    layer: str
    peak: list[int] | None
    box: list[int] | None


def add_explain_route(app: FastAPI) -> None:
    @app.post(
        "/api/explain",
        tags=["explain"],
        response_model=list[ExplanationResponse],
        responses={200: {"content": {"application/json": {}, "image/png": {}}}, **errors(400, 413, 415, 503)},
    )
    def explain_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[str | None, Query(description="classifier (default: the server's)")] = None,
        k: Annotated[int, Query(ge=1, le=20, description="top classes to explain")] = 1,
        label: Annotated[str | None, Query(max_length=200, description="explain this class instead")] = None,
        method: Annotated[
            str, Query(max_length=20, description="gradcam, gradcam++, scorecam ...")
        ] = "gradcam",
        annotated: Annotated[int, Query(ge=0, le=1, description="1: the overlay of the first, as PNG")] = 0,
    ) -> Any:
        """Where the classifier looked for an uploaded photo's top classes (as `pixelsift explain --format
        json`, without saved files), or with `annotated=1` the heatmap overlay of the first as a PNG."""
        from pixelsift.explain.api import Explainer  # imports torch: not before the first photo
        from pixelsift.explain.cam import SLOW_METHODS  # with the explainer, as above

        if method in SLOW_METHODS:  # it would hold the server's one inference lock for minutes
            raise ApiError(
                400,
                f"method {method} is not served on the web: {SLOW_METHODS[method]}; run it with the CLI: "
                f"pixelsift explain PHOTO --method {method}",
            )
        config = _config(request)
        image = read_upload(file, config)
        name = model or config.model
        get_model_spec(name)  # registry names only: a client never makes the server open a path
        explainers = request.app.state.explainers
        with request.app.state.inference_lock:
            key = (name, method)
            if key not in explainers:  # each (model, method) loaded once
                explainers[key] = Explainer(name, method=method, run_options=config.run_options)
            results = explainers[key].explain_image(image, file.filename or "upload", k=k, label=label)
        if annotated:
            return Response(png_bytes(results[0].picture(image)), media_type="image/png")
        return [{k: v for k, v in r.to_dict().items() if k != "saved"} for r in results]


class Match(BaseModel):
    """Why a photo matched a search: one concept of the query and the evidence for it."""

    concept: str
    source: str  # classifier, detector, labeler, scene (a region: sky, grass, tree, road), text-image or text
    label: str  # the class, detected class or custom label
    score: float  # calibrated, as fused
    raw: float  # the source's own number


class PhotoResult(BaseModel):  # the fields of library.search.RESULT_FIELDS, in that order
    path: str  # relative to the library root
    score: float
    matched: list[Match] = []
    labels: list[str]
    id: int
    relative_path: str  # the same as path here: the API never sends the server's own paths
    taken_at: str | None = None
    camera: str | None = None
    missing: bool = False  # the file is gone since it was indexed
    weak: list[str] = []  # concepts of the query this photo does not clearly show


class DuplicateGroupModel(BaseModel):
    kind: str  # "exact" (the same bytes) or "near"
    similarity: float  # the lowest cosine linking the group; 1 for exact copies
    ids: list[int]
    paths: list[str]  # relative to the library


class Detection(BaseModel):
    label: str
    score: float
    box: list[float]
    detector: str | None = None
    area: float | None = None  # the object's own share of the photo, from an instance segmenter


class PhotoInfo(BaseModel):
    id: int
    path: str
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None
    camera: str | None = None
    labels: list[dict[str, Any]]
    detections: list[Detection]
    text: list[dict[str, Any]] = []  # the lines read in it (`index --ocr`): text, score, box, words


def _photo_results(results: Any) -> list[dict[str, Any]]:
    """`SearchResult.to_dict`, the shape the CLI and Python give, with `path` relative to the library:
    the server's own paths are never sent."""
    return [{**r.to_dict(), "path": r.relative_path} for r in results]


def _header(text: str) -> str:
    return text.encode("ascii", "replace").decode()


class IndexStatus(BaseModel):
    state: str  # off (no background indexing), starting, indexing, watching, failed
    folder: str | None = None  # the folder's name (never the server's whole path)
    step: str | None = None  # "indexing photos", "catching up older photos" ...
    done: int | None = None
    total: int | None = None
    rate: float | None = None  # photos per second in this step
    seconds_left: int | None = None
    updates: int = 0  # updates finished since the server started
    photos: int | None = None
    last: str | None = None  # the last update's summary
    last_at: float | None = None  # seconds since the epoch
    error: str | None = None


def add_library_routes(app: FastAPI) -> None:
    library: LibraryAccess = app.state.library

    @app.get("/api/index/status", response_model=IndexStatus, tags=["library"])
    def index_status() -> dict[str, Any]:
        """How `pixelsift serve --index FOLDER` is keeping the index current: the step it is on, n of N,
        photos per second and the time left while it indexes; the last update's summary while it
        watches; `state` "off" for a server that does not index."""
        indexing = app.state.indexing
        return {"state": "off"} if indexing is None else indexing.status()

    @app.get(
        "/api/search", response_model=list[PhotoResult], tags=["library"], responses=errors(400, 404, 503)
    )
    def search(
        response: Response,
        q: Annotated[
            str, Query(min_length=1, max_length=500, description="a word, several words, or free text")
        ],
        n: Annotated[int, Query(ge=1, le=500, description="how many photos")] = 20,
        after: Annotated[str | None, Query(max_length=40, description="taken on or after (2021-07)")] = None,
        before: Annotated[str | None, Query(max_length=40, description="taken before this date")] = None,
        camera: Annotated[str | None, Query(max_length=200, description="EXIF make or model")] = None,
        min_score: Annotated[float | None, Query(ge=0.0, le=1.0, description="lowest score shown")] = None,
        folder: Annotated[str | None, Query(max_length=500, description="a folder of the library")] = None,
        label: Annotated[str | None, Query(max_length=200, description="a label or detected object")] = None,
        all: Annotated[
            bool, Query(description="only photos that show every concept (default: those first)")
        ] = False,
        text: Annotated[
            bool, Query(description="search only the text read in photos (`index --ocr`), as `--text`")
        ] = False,
    ) -> list[dict[str, Any]]:
        """Photos of the index matching the query, best first (as `pixelsift search --format json`), with
        the CLI's filters and `all` for its `--all`. Each result's `matched` says which evidence made it
        match, and `weak` which concepts of the query it does not clearly show. When nothing
        matches, the `X-Pixelsift-Message` header says why; `X-Pixelsift-Note` says which words of the
        query were ignored or searched through related classes."""
        if not q.strip():
            raise ApiError(400, "bad parameters: the query is empty")
        filters = dict(
            after=after, before=before, camera=camera, min_score=min_score, folder=folder, label=label
        )
        with library.lock:
            index = library.index()
            if text:
                results = index.search_text(q, n=n, **filters)
            else:
                results = index.search(q, n=n, match_all=all, **filters)
            if results.message:
                response.headers["X-Pixelsift-Message"] = _header(results.message)
            if results.notes:
                response.headers["X-Pixelsift-Note"] = _header(" | ".join(results.notes))
            return _photo_results(library.servable(results))

    @app.get("/api/library", response_model=LibraryStats, tags=["library"], responses=errors(503))
    def library_stats() -> dict[str, Any]:
        """What the served index holds (as `pixelsift index --stats --format json`, without its paths):
        photos, failures, the models it was built with, and `without_detection`, the photos no object
        detector has looked at (the page says so when there are any)."""
        with library.lock:
            stats = library.index().stats()
        stats["folder"] = Path(stats["root"]).name if stats.get("root") else None
        return {key: stats.get(key) for key in LibraryStats.model_fields}

    @app.get("/api/photos", response_model=PhotoPage, tags=["library"], responses=errors(400, 503))
    def photos(
        offset: Annotated[int, Query(ge=0, description="photos to skip")] = 0,
        limit: Annotated[int, Query(ge=1, le=500, description="photos to return")] = 60,
        after: Annotated[str | None, Query(max_length=40, description="taken on or after (2021-07)")] = None,
        before: Annotated[str | None, Query(max_length=40, description="taken before this date")] = None,
        camera: Annotated[str | None, Query(max_length=200, description="EXIF make or model")] = None,
        folder: Annotated[str | None, Query(max_length=500, description="a folder of the library")] = None,
        label: Annotated[str | None, Query(max_length=200, description="a label or detected object")] = None,
    ) -> dict[str, Any]:
        """Every photo of the library, newest first, a page at a time, with the search filters (the
        page's library view)."""
        with library.lock:
            total, page = library.index().photos(
                offset, limit, after=after, before=before, camera=camera, folder=folder, label=label
            )
            return {"total": total, "offset": offset, "photos": _photo_results(library.servable(page))}

    @app.get(
        "/api/duplicates",
        response_model=list[DuplicateGroupModel],
        tags=["library"],
        responses=errors(400, 503),
    )
    def duplicates(
        threshold: Annotated[
            float, Query(gt=0.0, le=1.0, description="feature cosine from which photos are near duplicates")
        ] = NEAR_THRESHOLD,
    ) -> list[dict[str, Any]]:
        """Groups of photos that are copies of each other (as `pixelsift duplicates --format json`, paths
        relative to the library): exact copies first, then near duplicates. Nothing is deleted."""
        with library.lock:
            return [group.to_dict() for group in library.index().duplicates(threshold)]

    @app.post(
        "/api/similar",
        response_model=list[PhotoResult],
        tags=["library"],
        responses=errors(400, 413, 415, 503),
    )
    def similar_to_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="a photo, in the library or not")],
        n: Annotated[int, Query(ge=1, le=500)] = 20,
        min_score: Annotated[float | None, Query(ge=0.0, le=1.0, description="lowest similarity")] = None,
    ) -> list[dict[str, Any]]:
        """Photos of the library that look most like an uploaded photo (as `pixelsift similar FILE`),
        best first; the same photo in the library is left out."""
        config = _config(request)
        data = read_upload_data(file, config)
        decode_upload(data, config, file.filename or "upload")  # 415 / 413 before any work
        with tempfile.TemporaryDirectory(prefix="pixelsift-upload-") as folder:
            path = Path(folder) / "upload"
            path.write_bytes(data)
            with library.lock:
                results = library.index().similar(path, n=n, min_score=min_score)
                return _photo_results(library.servable(results))

    @app.get(
        "/api/similar/{photo_id}",
        response_model=list[PhotoResult],
        tags=["library"],
        responses=errors(400, 404, 503),
    )
    def similar(
        photo_id: str,
        n: Annotated[int, Query(ge=1, le=500)] = 20,
        min_score: Annotated[float | None, Query(ge=0.0, le=1.0, description="lowest similarity")] = None,
    ) -> list[dict[str, Any]]:
        """Photos that look most like photo `photo_id`, best first (the photo itself excluded), at least
        `min_score` similar (the page asks for 0.3)."""
        with library.lock:
            path = library.photo_file(photo_id)
            results = library.index().similar(path, n=n, min_score=min_score)
            return _photo_results(library.servable(results))

    @app.get(
        "/api/photos/{photo_id}", tags=["library"], response_class=FileResponse, responses=errors(404, 503)
    )
    def photo(photo_id: str) -> FileResponse:
        """The original file of photo `photo_id` (only files recorded in the index are ever served)."""
        with library.lock:
            path = library.photo_file(photo_id)
        return FileResponse(path)

    @app.get(
        "/api/photos/{photo_id}/thumbnail",
        tags=["library"],
        response_class=Response,
        responses=errors(404, 503),
    )
    def thumbnail(photo_id: str) -> Response:
        """A JPEG thumbnail (longest side 320 px), made once and cached."""
        with library.lock:
            data = library.thumbnail(photo_id)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get(
        "/api/photos/{photo_id}/info", response_model=PhotoInfo, tags=["library"], responses=errors(404, 503)
    )
    def photo_info(photo_id: str) -> dict[str, Any]:
        """What the index knows about photo `photo_id`: labels, detections, the text read in it (with
        each line's and word's box), EXIF facts."""
        with library.lock:
            info = library.info(photo_id)
        return {key: info.get(key) for key in PhotoInfo.model_fields}
