"""Options shared by every command that runs a network, and input collection."""

from __future__ import annotations

import argparse
from pathlib import Path

from pixelsift.config import DEVICES_HELP, ENGINES, PRECISIONS
from pixelsift.errors import ImageError
from pixelsift.imaging.images import expand_inputs
from pixelsift.runtime.options import RunOptions


def add_runner_options(
    parser: argparse.ArgumentParser, model_default: str | None, batch: bool = True, engine: bool = True
) -> None:
    """-m/--model, --device, --precision, --threads, --engine (when the command offers engines) and
    --batch-size / --workers."""
    if model_default is not None:
        parser.add_argument(
            "-m",
            "--model",
            default=model_default,
            help=f"model name from `pixelsift models` (default: {model_default})",
        )
    group = parser.add_argument_group("performance")
    group.add_argument(
        "--device", default=None, help=f"{DEVICES_HELP} (default: auto, a GPU when there is one)"
    )
    group.add_argument(
        "--precision",
        default=None,
        choices=PRECISIONS,
        help="auto (default) picks bf16 on CPUs with AMX / AVX-512 BF16, fp16 on CUDA, else fp32",
    )
    group.add_argument(
        "--threads", type=int, default=None, help="compute threads (default: the CPUs available)"
    )
    if engine:
        group.add_argument(
            "--engine", default="torch", choices=ENGINES, help="inference engine (default: torch)"
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
        engine=getattr(args, "engine", None) or "torch",
        threads=args.threads,
        batch_size=getattr(args, "batch_size", None),
        workers=getattr(args, "workers", None),
    )


def add_format_option(
    parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json", "csv")
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
    """Expand the inputs up front so progress bars know the total (paths only: small even for 1M files)."""
    return list(expand_inputs(inputs))
