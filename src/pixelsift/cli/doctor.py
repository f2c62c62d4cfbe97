"""`pixelsift doctor`: what works here, what does not, and the command that fixes each."""

from __future__ import annotations

import argparse

from pixelsift.cli.output import printable, to_json

EXAMPLES = """examples:
  pixelsift doctor                 every part, with the fix for what does not work
  pixelsift doctor --format json   the same report for scripts
  pixelsift doctor --no-load       skip loading the detectors (faster)

Exit code 0 when nothing installed is broken (optional parts may be missing), 1 otherwise.
"""

MARKS = {"ok": "ok", "info": "info", "missing": "missing", "warning": "WARNING", "broken": "BROKEN"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="check the engines, detectors, OpenCV, extras, GPU and weights cache; name each fix",
        description="Check every optional part of pixelsift here and say how to fix what does not work.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-f", "--format", default="table", choices=("table", "json"), help="output format")
    p.add_argument(
        "--no-load",
        dest="load",
        action="store_false",
        help="do not load the detectors (checks only packages)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixelsift.doctor import diagnose  # imported when the command runs: `pixelsift --help` stays fast

    report = diagnose(load_detectors=args.load)
    if args.format == "json":
        print(to_json(report.to_dict()))
        return 0 if report.ok else 1
    width = max(len(c.name) for c in report.checks)
    part = None
    for check in report.checks:
        if check.part != part:
            part = check.part
            print(part)
        print(printable(f"  {MARKS[check.status]:<8} {check.name:<{width}}  {check.detail}"))
        if check.fix and check.status != "ok":
            print(printable(f"  {'':<8} {'':<{width}}  fix: {check.fix}"))
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items())
    print(f"\n{counts}" + ("" if report.ok else ": fix what is BROKEN (the commands above)"))
    return 0 if report.ok else 1
