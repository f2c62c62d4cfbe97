"""The `pixelsift` command: argument parsing and printing only; the work happens in the library.

Exit codes: 0 everything worked, 1 some inputs or the command failed, 2 bad usage.
Data goes to stdout, progress and messages to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pixelsift.cli.output import printable
from pixelsift.errors import PixelsiftError
from pixelsift.version import __version__

# Each module adds its subcommand; a new command is one new module and one line here.
COMMAND_MODULES = (
    "classify",
    "detect",
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
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
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


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:  # one line per message, control characters escaped
        handler.setFormatter(_PrintableFormatter("pixelsift: %(message)s"))
    # imported here: keeps Pillow off the path of `pixelsift --help`
    from pixelsift.imaging.images import silence_pillow_warnings

    silence_pillow_warnings()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args.verbose)
    args.progress = False if args.quiet else None
    try:
        return int(args.func(args) or 0)
    except PixelsiftError as exc:
        print(f"pixelsift: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pixelsift: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
