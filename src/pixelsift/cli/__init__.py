"""The `pixelsift` command: argument parsing and printing only; the work happens in the library.

Exit codes: 0 everything worked, 1 some inputs or the command failed, 2 bad usage.
Data goes to stdout, progress and messages to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from pixelsift.cli.output import printable
from pixelsift.errors import PixelsiftError
from pixelsift.version import __version__

# Each module adds its subcommand; a new command is one new module and one line here.
COMMAND_MODULES = (
    "classify",
    "detect",
    "segment",
    "ocr",
    "dataset",
    "embed",
    "transfer",
    "explain",
    "models",
    "index",
    "search",
    "serve",
    "batch",
    "doctor",
    "completion",
)


class _Parser(argparse.ArgumentParser):
    """argparse with a suggestion for a mistyped choice: `pixelsift clasify` -> did you mean 'classify'?
    (subcommands, and every option with choices: their parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            choices = [c.strip().strip("'") for c in found.group(2).split(",")]
            close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean '{close[0]}'?"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="pixelsift",
        description="Pretrained networks for your own photos: classify, transfer-learn, detect and search.",
        epilog="Run `pixelsift COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"pixelsift {__version__}")
    _add_global_options(parser, argparse.SUPPRESS)
    parser.set_defaults(verbose=0, quiet=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".{name}", __name__).add_parser(subparsers)
    for sub in _all_subparsers(parser):
        _add_global_options(sub, argparse.SUPPRESS)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """-v / -q work before or after the command name (`pixelsift -v classify` = `pixelsift classify -v`)."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="say what is happening (-vv: debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bars")


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.append(sub)
                found.extend(_all_subparsers(sub))
    return found


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class _LineHandler(logging.Handler):
    """Log records as lines on stderr, above any progress bar (`core.progress.write_line`)."""

    def emit(self, record: logging.LogRecord) -> None:
        from pixelsift.core.progress import write_line

        try:
            write_line(self.format(record))
        except Exception:
            self.handleError(record)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = _LineHandler()
    handler.setFormatter(_PrintableFormatter("pixelsift: %(message)s"))  # control characters escaped
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # imported here: keeps Pillow off the path of `pixelsift --help`
    from pixelsift.imaging.images import silence_pillow_warnings

    silence_pillow_warnings()


def _escape_unprintable() -> None:
    # A name the terminal's encoding cannot show (PYTHONIOENCODING=ascii, a C locale) is printed
    # escaped (`caf\\xe9.jpg`), never a UnicodeEncodeError halfway through the output.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


# A write that failed because the disk or the device is full (stdout on /dev/full, a full disk under -o)
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _stdout_to_devnull() -> None:
    # Nothing more can reach the reader; without this Python's exit would try to flush again and print
    # "Exception ignored ...".
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _cwd_missing() -> bool:
    try:
        os.getcwd()
    except OSError:
        return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    _escape_unprintable()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    if _cwd_missing():  # relative paths would mean nothing (and native libraries abort on it)
        print(
            "pixelsift: error: the current folder no longer exists; cd to a folder that does", file=sys.stderr
        )
        return 2
    _setup_logging(args.verbose)
    args.progress = False if args.quiet else None
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a full or broken stdout fails here, not in Python's exit
        return code
    except PixelsiftError as exc:
        print(f"pixelsift: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pixelsift: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        _stdout_to_devnull()
        return 0
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        where = f" {printable(str(exc.filename))}" if exc.filename else " (standard output)"
        print(
            f"pixelsift: error: cannot write{where}: {exc.strerror}; free some space or write elsewhere",
            file=sys.stderr,
        )
        _stdout_to_devnull()
        return 1


def entry() -> None:
    """The `pixelsift` command: `main`, then the exit. After Ctrl-C the process leaves at once (exit 130):
    a native runtime interrupted mid-call (torch's ONNX export, a thread pool) can abort the interpreter's
    normal shutdown with "terminate called without an active exception" (SIGABRT)."""
    code = main()
    if code == 130:
        if "ray" in sys.modules:  # a local Ray cluster this run started goes with it
            with contextlib.suppress(Exception):
                sys.modules["ray"].shutdown()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(130)
    sys.exit(code)
