"""`pixelsift classify`: top-k ImageNet classes for photos, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pixelsift.cli.common import (
    add_format_option,
    add_inputs_argument,
    add_runner_options,
    add_top_k_option,
    collect_inputs,
    run_options,
)
from pixelsift.cli.output import (
    closing_line,
    csv_writer,
    error_line,
    format_score,
    format_table,
    json_writer,
    printable,
)
from pixelsift.models.registry import DEFAULT_CLASSIFIER

if TYPE_CHECKING:
    from pixelsift.runtime.classification import Classification

EXAMPLES = """examples:
  pixelsift classify samples/chelsea.png
  pixelsift classify photos/ -k 3 --format csv > labels.csv
  pixelsift classify 'trip/**/*.jpg' -m densenet121 --format json | jq '.[0].predictions[0]'
  find . -name '*.png' | pixelsift classify - -k 1
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "classify",
        help="top-k ImageNet classes for photos",
        description="Classify photos with a pretrained ImageNet model and print the top-k classes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_inputs_argument(p)
    add_top_k_option(p)
    add_format_option(p)
    add_runner_options(p, DEFAULT_CLASSIFIER)
    p.set_defaults(func=run)


def print_table(result: Classification) -> None:
    rows = [(label, format_score(score)) for label, score in zip(result.labels, result.scores, strict=True)]
    unknown = "  (unlike the model's training photos: probably none of its classes)"
    print(printable(result.path) + (unknown if result.recognised is False else ""))
    print(format_table(["Class", "Probability score"], rows, right=(1,)))
    print()


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.runtime.classify import Classifier

    started = time.perf_counter()
    sources = collect_inputs(args.inputs)
    classifier = Classifier(args.model, run_options(args))
    results = classifier.iter_classify(sources, top_k=args.top_k, progress=args.progress, total=len(sources))
    failed = write_classifications(results, args.format)
    closing_line("classified", len(sources), failed, started, args.quiet)
    return 1 if failed else 0


def write_classifications(results: Iterable[Classification], fmt: str) -> int:
    """Print results as they come (table, JSON array or CSV); failed inputs go to stderr. Returns how
    many failed. `pixelsift predict` prints its results the same way."""
    failed = 0
    if fmt in ("json", "jsonl"):
        with json_writer(fmt) as out:
            for r in results:
                failed += not r.ok
                if not r.ok:
                    error_line(r.path, r.error or "")
                out.write(r.to_dict())
    elif fmt == "csv":
        writer = csv_writer()
        writer.writerow(["path", "rank", "label", "score", "error"])
        for r in results:
            failed += not r.ok
            if not r.ok:
                error_line(r.path, r.error or "")
                writer.writerow([r.path, "", "", "", r.error])
            for rank, (label, score) in enumerate(zip(r.labels, r.scores, strict=True), start=1):
                writer.writerow([r.path, rank, label, repr(score), ""])
            sys.stdout.flush()
    else:
        for r in results:
            failed += not r.ok
            if r.ok:
                print_table(r)
            else:
                error_line(r.path, r.error or "")
    return failed
