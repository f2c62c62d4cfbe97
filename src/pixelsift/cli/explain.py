"""`pixelsift explain`: what the network looked at, as heatmaps over the photos."""

from __future__ import annotations

import argparse
import sys
import time

from pixelsift.cli.common import (
    add_format_option,
    add_inputs_argument,
    add_runner_options,
    collect_inputs,
    int_in,
    run_options,
)
from pixelsift.cli.output import (
    JsonArrayWriter,
    closing_line,
    error_line,
    format_score,
    format_table,
    printable,
)
from pixelsift.explain.cam import DEFAULT_METHOD, METHODS
from pixelsift.models.registry import DEFAULT_CLASSIFIER

EXAMPLES = """examples:
  pixelsift explain cat.jpg --save explained/                top class, Grad-CAM, overlay saved
  pixelsift explain photos/ -k 3 --method gradcam++ --save explained/ --format json
  pixelsift explain cat.jpg --class "tiger cat" -m resnet50 --save explained/
  pixelsift explain new/ --trained birds.safetensors --save explained/   a model from `pixelsift train`

The JSON has, per photo and class: label, score, rank, method, layer, peak [x, y] and box [x1, y1, x2, y2]
of the hottest region (in the photo's pixels), and the saved file. Originals are never changed."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain",
        help="show what the network looked at (class activation maps)",
        description="For each photo and each of its top-k classes (or --class), a heatmap of where the "
        "network looked, overlaid on the photo: Grad-CAM and friends (pytorch-grad-cam).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_inputs_argument(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "-m", "--model", default=None, help=f"a registry classifier (default: {DEFAULT_CLASSIFIER})"
    )
    group.add_argument(
        "--trained", metavar="FILE", default=None, help="a model file saved by `pixelsift train`"
    )
    p.add_argument("--class", dest="label", metavar="LABEL", default=None, help="explain this class")
    p.add_argument(
        "-k", "--top-k", type=int_in(1, 1000), default=1, metavar="K", help="top classes (default: 1)"
    )
    p.add_argument(
        "--method", default=DEFAULT_METHOD, choices=list(METHODS), help=f"(default: {DEFAULT_METHOD})"
    )
    p.add_argument(
        "--layer", default=None, help="the layer to look at (default: the last convolutional stage)"
    )
    p.add_argument(
        "--save", metavar="DIR", default=None, help="write the overlay images into DIR (new files only)"
    )
    add_format_option(p, ("table", "json"))
    add_runner_options(p, None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.explain.api import Explainer

    started = time.perf_counter()
    explainer = Explainer(args.model, args.trained, args.method, args.layer, run_options(args))
    sources = collect_inputs(args.inputs)
    results = explainer.iter_explain(
        sources, k=args.top_k, label=args.label, save=args.save, progress=args.progress, total=len(sources)
    )
    failed = 0
    rows = []
    if args.format == "json":
        with JsonArrayWriter() as out:
            for r in results:
                if not r.ok:
                    failed += 1
                    error_line(r.path, r.error or "")
                out.write(r.to_dict())
    else:
        for r in results:
            if not r.ok:
                failed += 1
                error_line(r.path, r.error or "")
                continue
            rows.append(
                [printable(r.path), r.label, format_score(r.score), r.rank, _box(r.box), r.saved or ""]
            )
        print(format_table(["path", "class", "score", "rank", "hottest region", "saved"], rows, right=(2, 3)))
    print(f"pixelsift: {explainer.name}, {explainer.method} on layer {explainer.layer}", file=sys.stderr)
    closing_line("explained", len(sources), failed, started, args.quiet)
    return 1 if failed else 0


def _box(box: tuple[int, int, int, int] | None) -> str:
    return "" if box is None else f"{box[0]},{box[1]} - {box[2]},{box[3]}"
