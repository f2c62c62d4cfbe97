"""`pixelsift embed`: feature vectors of photos, written as Parquet, .npz or .csv."""

from __future__ import annotations

import argparse
import sys

from pixelsift.cli.common import add_cache_option, add_runner_options, run_options
from pixelsift.cli.output import error_line
from pixelsift.core.outputs import output_file
from pixelsift.errors import UsageError
from pixelsift.models.registry import DEFAULT_CLASSIFIER

EXAMPLES = """examples:
  pixelsift embed birds/ -o birds.parquet          a data set: rows get their split and class
  pixelsift embed photos/ 'more/*.jpg' -o vectors.npz -m densenet121
  pixelsift embed birds/ -o birds.csv --normalize none

Each row: path, split, label (when the only input is a data-set folder), then f0, f1, ... The vectors
are the model's penultimate layer, L2-normalised (--normalize). They are cached on disk, so
embedding the same photos again (or training on them) does not run the network.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "embed",
        help="feature vectors of photos (Parquet, .npz, .csv)",
        description="Run photos through a pretrained network and write the vectors of its penultimate layer.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="ROOT|IMAGES",
        help="a data-set folder, or image files, folders, glob patterns, - for paths on stdin",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="output file: .parquet (default), .npz or .csv"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing -o file even when it is not pixelsift embeddings (default: refuse)",
    )
    p.add_argument(
        "--normalize",
        default="l2",
        choices=("l2", "rms", "none"),
        help="l2: unit length (default); rms: unit length x sqrt(dim); none: raw vectors",
    )
    add_cache_option(p)
    add_runner_options(p, DEFAULT_CLASSIFIER)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.features.embed import SUFFIXES, check_output, embed

    output = output_file(args.output)  # checked before the work
    if not output.suffix:  # no extension: Parquet, the default
        output = output_file(output.with_name(output.name + ".parquet"))
    elif output.suffix.lower() not in SUFFIXES:
        raise UsageError(
            f"-o {args.output}: unknown output format {output.suffix!r}; use .parquet, .npz or .csv"
        )
    check_output(output, args.force)  # a file of the user's is refused before the work, not after
    result = embed(
        args.inputs,
        model=args.model,
        normalize=args.normalize,
        cache=not args.no_cache,
        progress=args.progress,
        run_options=run_options(args),
    )
    for path, reason in result.failures:
        error_line(path, reason)
    written = result.save(output, force=args.force)
    print(f"{result.shape} -> {written}")
    if result.failures:
        total = result.shape[0] + len(result.failures)
        print(f"pixelsift: {len(result.failures)} of {total} inputs failed", file=sys.stderr)
    return 1 if result.failures else 0
