"""`pixelsift dataset`: what a labelled photo folder holds, and what in it would spoil training."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pixelsift.cli.common import add_format_option
from pixelsift.cli.output import format_table, to_json

if TYPE_CHECKING:
    from pixelsift.imaging.datasets import Dataset, Problems

EXAMPLES = """examples:
  pixelsift dataset birds/                 classes, images per split, first sample, problems
  pixelsift dataset birds/ --format json | jq '.problems'
  pixelsift dataset birds/ --no-read       structure only (does not open every photo)

A data set is ROOT/train/<class>/*.jpg and ROOT/valid/<class>/*.jpg (val/, validation/ and test/ are
understood too), or ROOT/<class>/*.jpg without splits. Exit code 1 when problems are found.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dataset",
        help="classes, images per split and problems of a labelled photo folder",
        description="Count the photos of a labelled folder per class and split, and check it for problems: "
        "empty class folders, classes in one split only, unreadable files, photos in two splits.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("root", metavar="ROOT", help="the data-set folder")
    p.add_argument(
        "--no-read", action="store_true", help="skip reading every file (no unreadable / duplicate checks)"
    )
    add_format_option(p, ("table", "json"))
    p.set_defaults(func=run)


def dataset_dict(dataset: Dataset, problems: Problems) -> dict[str, Any]:
    counts = dataset.counts()
    return {
        "root": str(dataset.root),
        "splits": dataset.splits,
        "classes": dataset.classes,
        "counts": counts,
        "total": len(dataset.samples),
        "first_sample": dataset.first_samples(),
        "problems": problems.to_dicts(),
        "warnings": dataset.size_warnings(),
    }


def print_dataset(dataset: Dataset, problems: Problems) -> None:
    stats = dataset.stats()
    first = dataset.first_samples()
    columns = [c for c in stats.columns if c not in ("total", "first sample")]
    summary = ", ".join(f"{c} {int(stats[c].sum())}" for c in columns)
    print(f"{dataset.root}: {len(dataset.classes)} classes, {len(dataset.samples)} images ({summary})")
    rows: list[list[Any]] = [
        [name, *(int(row[c]) for c in columns), int(row["total"]), first[str(name)] or "-"]
        for name, row in stats.iterrows()
    ]
    rows.append(["total", *(int(stats[c].sum()) for c in columns), int(stats["total"].sum()), ""])
    right = tuple(range(1, len(columns) + 2))
    print(format_table(["class", *columns, "total", "first sample"], rows, right=right))
    print()
    if not problems:
        print("No problems found.")
        return
    print(f"Problems ({len(problems)}):")
    for problem in problems:
        print(f"  {problem.message}")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.imaging.datasets import read_dataset

    dataset = read_dataset(args.root)
    problems = dataset.check(read_files=not args.no_read, progress=args.progress)
    if args.format == "json":
        print(to_json(dataset_dict(dataset, problems)))
    else:
        print_dataset(dataset, problems)
    for warning in dataset.size_warnings():  # a warning: the exit code stays that of the problems
        print(f"pixelsift: warning: {warning}", file=sys.stderr)
    return 1 if problems else 0
