"""The local web app: a REST API over the same library functions as the CLI, and a page that uses it.

Security model: the server binds to 127.0.0.1 unless told otherwise; it answers only requests
addressed to its own names (the Host header: 127.0.0.1, localhost, [::1], or the --host given, at its
port; `--allow-host` adds names), so a page on a DNS-rebinding domain cannot read the library; a
request from another site's page (a foreign Origin header) is refused unless `--cors` allows that
origin; it only ever serves files that are recorded in the photo index, looked up by id (never by a
path from the request) and resolved inside the library root; uploads are size- and pixel-limited and
never written anywhere but Starlette's self-deleting spool files.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelsift.core.jsontext import to_json
from pixelsift.errors import PixelsiftError
from pixelsift.library.schema import damaged_index_error
from pixelsift.version import __version__
from pixelsift.web import routes
from pixelsift.web.config import WebConfig
from pixelsift.web.library_access import LibraryAccess

STATIC = Path(__file__).parent / "static"


class BodySizeLimit:
    """Refuse request bodies over the limit with 413, whether or not they declare a Content-Length."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0
        exceeded = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:  # stop feeding the body; the app sees a disconnect or a parse error
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def limited_send(message: Message) -> None:
            # Whatever the app answers to a truncated body (form parsers turn the error into a 400),
            # the client gets the 413 it deserves.
            nonlocal replaced
            if exceeded:
                if not replaced and message["type"] == "http.response.start":
                    replaced = True
                    await _too_large(self.limit)(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, limited_send)
        except _BodyTooLarge:
            if not replaced:
                await _too_large(self.limit)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def split_host(value: str) -> tuple[str, int | None]:
    """ "Name:port" of a Host header or an origin's authority -> (lower-case name, port or None);
    an IPv6 address keeps no brackets ("[::1]:8000" -> ("::1", 8000))."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return name, int(port) if port.isdigit() else None


class TrustedRequests:
    """421 for a request addressed to a name this server does not answer to (its Host header), 403 for
    one sent by another site's page (an Origin that is neither this server nor a `--cors` origin)."""

    def __init__(self, app: ASGIApp, config: WebConfig):
        self.app = app
        self.hosts = {h.strip().lower().strip("[]") for h in config.allowed_hosts}
        self.port = config.port
        self.origins = {o.rstrip("/").lower() for o in config.cors_origins}

    def _ours(self, name: str, port: int | None) -> bool:
        return (not self.hosts or name in self.hosts) and (self.port is None or port in (None, self.port))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self._ours(*split_host(host)):
            message = (
                f"this server does not answer to the host {host!r} (it serves 127.0.0.1, localhost and the "
                "--host it was given); to reach it by another name, start it with --allow-host NAME"
            )
            await _error(421, message)(scope, receive, send)
            return
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower()
        if origin and origin not in self.origins:
            scheme, _, authority = origin.partition("://")
            if scheme not in ("http", "https") or not self._ours(*split_host(authority)):
                message = (
                    f"a request from the page of another site ({origin}) is refused; to let that site "
                    f"use this server, start it with --cors {origin}"
                )
                await _error(403, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"upload is over the limit of {limit / 1024 / 1024:.0f} MB (set --max-upload-mb)")


class ValidJSONResponse(JSONResponse):
    """Every JSON answer: valid UTF-8 whatever a file name holds (`\\xNN` escapes), NaN as null."""

    def render(self, content: Any) -> bytes:
        return to_json(content, indent=None).encode("utf-8")


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return ValidJSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def create_app(config: WebConfig | None = None) -> FastAPI:
    """The FastAPI application; `pixelsift serve` runs it with uvicorn."""
    config = config or WebConfig()
    # fastapi-offline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from files in its wheel,
    # not from a CDN, so the API docs work on a machine without the internet
    app = FastAPIOffline(
        static_url="/docs-static",
        title="pixelsift",
        version=__version__,
        description="Classify, detect and search photos with pretrained networks.",
        default_response_class=ValidJSONResponse,
    )
    app.state.config = config
    app.state.inference_lock = threading.Lock()  # one network at a time: they use every core anyway
    app.state.detectors = {}  # detector name (None: the default) -> loaded detector
    app.state.segmenters = {}  # the same for instance segmenters
    app.state.reader = None  # the text reader of /api/ocr, loaded on first use
    app.state.explainers = {}  # (model, method) -> loaded Explainer

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST"])
    app.add_middleware(BodySizeLimit, limit=config.max_upload_bytes)
    app.add_middleware(TrustedRequests, config=config)  # the outermost: checked before anything else

    @app.exception_handler(PixelsiftError)
    async def pixelsift_error(_: Request, exc: PixelsiftError) -> JSONResponse:
        return _error(exc.http_status, str(exc))  # each error type declares its own

    @app.exception_handler(sqlite3.DatabaseError)
    async def damaged_index(_: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        error = damaged_index_error(config.db or "the photo index", exc)
        return _error(503, str(error) if error else f"the photo index cannot be read ({exc})")

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error(400, f"bad parameters: {details}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), exc.headers)  # e.g. a 405's Allow

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC, html=False), name="static")

    app.state.library = LibraryAccess(config.db)
    app.state.indexing = None
    if config.index_folder is not None and config.db is not None:
        from pixelsift.web.indexing import BackgroundIndexer

        indexer = BackgroundIndexer(config.index_folder, config.db, {"detector": config.detector})
        app.state.indexing = indexer
        indexer.start()
        app.router.on_shutdown.append(indexer.close)
    routes.add_routes(app)
    routes.add_explain_route(app)
    routes.add_library_routes(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = routes.validation_as_400(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
