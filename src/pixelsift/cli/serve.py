"""`pixelsift serve`: the local web page and REST API."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from pixelsift.cli.common import add_runner_options, int_in, positive_float, run_options
from pixelsift.errors import MissingDependencyError, UsageError
from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.options import RunOptions

WILDCARD_HOSTS = ("0.0.0.0", "::")  # listening on every interface

EXAMPLES = """examples:
  pixelsift serve                          classify and detect from a browser at http://127.0.0.1:8000
  pixelsift serve --db photos.db           search that photo index (default: the one `search` uses)
  pixelsift serve --index ~/Photos         index the folder in the background and keep it current
  pixelsift serve --host 0.0.0.0 --port 9000             reachable from other machines (no auth!)
  pixelsift serve --allow-host photos.home.lan            also answer to that name (a reverse proxy)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="local web page and REST API",
        description="Serve the pixelsift page and REST API (OpenAPI at /docs) on this machine.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", type=Path, default=None, help="photo index to search (made by `pixelsift index`)")
    p.add_argument(
        "--index",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="index this photo folder in the background and keep it current as photos arrive, move and "
        "go (into --db, or the folder's default index); the page shows the progress",
    )
    p.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int_in(1, 65535), default=8000, help="port, 1-65535 (default: 8000)")
    p.add_argument(
        "--max-upload-mb", type=positive_float, default=25.0, help="largest upload accepted (default: 25)"
    )
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN", help="allow this origin (CORS)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to this host name (default: 127.0.0.1, localhost, ::1 and "
        "--host; any name when --host is 0.0.0.0 or :: and no --allow-host is given)",
    )
    p.add_argument(
        "--detector",
        default=None,
        help="detector (default: the best available); none: serve without object detection",
    )
    add_runner_options(p, DEFAULT_CLASSIFIER, batch=False)  # -m, --device, --precision, --threads, --engine
    p.set_defaults(func=run)


def _default_index() -> Path | None:
    """The index `pixelsift search` would use here (the folder's library, or the only one); None when
    there is none (the page still classifies and detects). Several, and none holds this folder: the
    UsageError `search` gives, listing them (exit 2), rather than a server without its library."""
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.library.photo_index import find_db, known_libraries

    return find_db() if known_libraries() else None


def server_run_options(args: argparse.Namespace) -> RunOptions:
    """The command's run options; the server classifies one photo at a time (behind a lock), so unless
    `--streams` says otherwise it runs one stream with every thread, which answers soonest."""
    options = run_options(args)
    return options if options.streams is not None else RunOptions.of(options, streams=1)


def allowed_hosts(host: str, extra: list[str]) -> tuple[str, ...]:
    """The names the server answers to: loopback, the address it listens on, and `--allow-host`'s; none
    (any name) when it listens on every interface and no name was given."""
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.web.config import LOOPBACK_HOSTS

    if host in WILDCARD_HOSTS and not extra:
        return ()
    names = [*LOOPBACK_HOSTS, *extra] + ([] if host in WILDCARD_HOSTS else [host])
    return tuple(dict.fromkeys(name.strip().lower().strip("[]") for name in names if name.strip()))


def listen_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (a bad address, a port in use), or None: bound
    once and released, so the problem is one line before "serving", not a failure after it."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot listen on {host!r}: not an address of this machine ({exc}); use --host 127.0.0.1"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use (another server?); choose another with --port"
            reason = exc.strerror or exc
            return f"cannot listen on {host}:{port}: {reason}; use --host 127.0.0.1 or another --port"
    return None


def check_models(model: str, detector: str | None) -> None:
    """The classifier and detector named exist (a `UsageError` with suggestions, before serving)."""
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.library.labelers import NONE
    from pixelsift.models.records import ClassifierSpec, DetectorSpec
    from pixelsift.models.registry import get_spec_of

    get_spec_of(model, ClassifierSpec, needed_for="serve -m")
    if detector is not None and detector != NONE:  # none: no detection, as `index --detector none`
        get_spec_of(detector, DetectorSpec, needed_for="serve --detector")


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        # imported when the command runs: `pixelsift --help` stays fast
        from pixelsift.web import WebConfig, create_app
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "web", "pixelsift serve") from None
    if args.max_upload_mb <= 0:
        raise UsageError("--max-upload-mb must be positive")
    folder = None
    if args.index is not None:
        folder = args.index.expanduser().resolve()
        if not folder.is_dir():
            raise UsageError(f"--index {args.index}: no such folder")
        from pixelsift.library.photo_index import default_db_path

        args.db = args.db if args.db is not None else default_db_path(folder)
    elif args.db is not None and not args.db.is_file():
        raise UsageError(
            f"{args.db}: no such index; build one with `pixelsift index PHOTOS_DIR --db {args.db}`"
            " (or let the server build and keep it: --index PHOTOS_DIR)"
        )
    check_models(args.model, args.detector)
    problem = listen_problem(args.host, args.port)
    if problem:
        print(f"pixelsift: error: {problem}", file=sys.stderr)
        return 1
    db = args.db if args.db is not None else _default_index()  # the index `pixelsift search` uses
    config = WebConfig(
        allowed_hosts=allowed_hosts(args.host, args.allow_host),
        port=args.port,
        db=db,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        cors_origins=args.cors,
        model=args.model,
        detector=args.detector,
        run_options=server_run_options(args),
        index_folder=folder,
    )
    app = create_app(config)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"pixelsift: warning: listening on {args.host}: anyone who can reach it can use it",
            file=sys.stderr,
        )
    shown = "127.0.0.1" if args.host in WILDCARD_HOSTS else args.host
    if folder is not None:
        print(f"pixelsift: indexing {folder} into {db} and keeping it current (the page shows how far)",
              file=sys.stderr)  # fmt: skip
    elif db:
        print(f"pixelsift: searching the photo index {db}", file=sys.stderr)
    else:
        print(
            "pixelsift: no photo index (make one with `pixelsift index PHOTOS_DIR`); search is off",
            file=sys.stderr,
        )
    print(
        f"pixelsift: serving on http://{shown}:{args.port}/  (API docs: /docs; Ctrl-C stops)", file=sys.stderr
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if not args.verbose else "info")
    return 0
