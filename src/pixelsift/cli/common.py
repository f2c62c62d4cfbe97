"""Options shared by every command that runs a network, and input collection."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from pixelsift.config import DEVICES_HELP, ENGINES, PRECISIONS
from pixelsift.errors import ImageError, PixelsiftError
from pixelsift.imaging.images import expand_inputs, image_extensions
from pixelsift.models.registry import DEFAULT_TOP_K
from pixelsift.runtime.options import RunOptions


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], else argparse's one-line usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: use a number {bound}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: use a number above 0")
    return value


def add_runner_options(
    parser: argparse.ArgumentParser,
    model_default: str | None,
    batch: bool = True,
    engine: bool = True,
    model_help: str = "model name from `pixelsift models`",
) -> None:
    """-m/--model, --device, --precision, --threads, --engine (when the command offers engines) and
    --batch-size / --workers."""
    if model_default is not None:
        parser.add_argument(
            "-m",
            "--model",
            default=model_default,
            help=f"{model_help} (default: {model_default})",
        )
    group = parser.add_argument_group("performance")
    group.add_argument(
        "--device", default=None, help=f"{DEVICES_HELP} (default: auto, a GPU when there is one)"
    )
    group.add_argument(
        "--precision",
        default=None,
        choices=PRECISIONS,
        help="auto (default): what the engine choice measured fastest with the same top-1 (never an "
        "emulated one; int8 only for classes), or, with an explicit engine, bf16 on CPUs with AMX / "
        "AVX-512 BF16, fp16 on CUDA, else fp32",
    )
    group.add_argument(
        "--threads", type=int, default=None, help="compute threads (default: the CPUs available)"
    )
    if engine:
        group.add_argument(
            "--engine",
            default=None,
            choices=ENGINES,
            help="inference engine (default: auto, the one measured fastest for the model on this "
            "machine, once; PIXELSIFT_ENGINE sets another default)",
        )
        group.add_argument(
            "--streams",
            type=int,
            default=None,
            metavar="N",
            help="batches computed at once, sharing --threads (default: measured; else one per CPU)",
        )
    if batch:
        group.add_argument(
            "--batch-size",
            type=int,
            default=None,
            metavar="N",
            help="images per batch (default 4 on small CPUs; 8 on big ones or with onnxruntime; 64 on CUDA)",
        )
        group.add_argument("--workers", type=int, default=None, metavar="N", help="image decoding threads")


def run_options(args: argparse.Namespace) -> RunOptions:
    """The one `RunOptions` of a command, from the options `add_runner_options` added."""
    return RunOptions(
        device=args.device,
        precision=args.precision,
        engine=getattr(args, "engine", None),
        threads=args.threads,
        streams=getattr(args, "streams", None),
        batch_size=getattr(args, "batch_size", None),
        workers=getattr(args, "workers", None),
    )


def add_agnostic_nms_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agnostic-nms",
        action="store_true",
        help="overlapping boxes of different classes suppress each other too (one object, one box)",
    )


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")


def add_top_k_option(parser: argparse.ArgumentParser) -> None:
    """-k / --top-k: how many classes per image, one default on every command (`DEFAULT_TOP_K`)."""
    parser.add_argument(
        "-k",
        "--top-k",
        type=int,
        default=DEFAULT_TOP_K,
        metavar="K",
        help=f"classes per image (default: {DEFAULT_TOP_K})",
    )


def add_format_option(
    parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json", "jsonl", "csv")
) -> None:
    parser.add_argument(
        "-f",
        "--format",
        default="table",
        choices=choices,
        help=f"output format (default: table; {', '.join(choices)})",
    )


def add_inputs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGES",
        help="image files, folders (searched recursively), glob patterns, or - to read paths from stdin",
    )


def collect_inputs(inputs: list[str]) -> list[Path | ImageError]:
    """Expand the inputs up front so progress bars know the total (paths only: small even for 1M files).

    Nothing to work on is an error (exit code 1), not a silent success: a folder without photos, a
    wrong folder, empty standard input."""
    sources = list(expand_inputs(inputs))
    if not sources:
        shown = ", ".join(inputs) or "standard input"
        raise PixelsiftError(
            f"no images found in {shown} (looked for {', '.join(sorted(image_extensions()))}, recursively)"
        )
    return sources
