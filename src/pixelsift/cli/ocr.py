"""`pixelsift ocr`: the text in photos, line by line, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from pixelsift.cli.common import (
    add_format_option,
    add_inputs_argument,
    add_runner_options,
    collect_inputs,
    int_in,
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
from pixelsift.core.outputs import OutputNames

if TYPE_CHECKING:
    from pixelsift.ocr.results import TextReading

EXAMPLES = """examples:
  pixelsift ocr receipt.jpg
  pixelsift ocr screenshots/ --format csv > text.csv
  pixelsift ocr 'trip/**/*.jpg' --format jsonl | jq -r '.text'
  pixelsift ocr signs/ --min-score 0.6        # keep less certain readings too
  pixelsift ocr photos/ --save read/          # a copy of each photo with its lines outlined

Lines are printed top to bottom; boxes are pixels of the upright photo (x1, y1, x2, y2). To search a
library by its text: pixelsift index PHOTOS --ocr, then pixelsift search --text WORDS.
"""


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from pixelsift.ocr.reader import DETECT_SIZE, MIN_SCORE  # no heavy import: constants only

    p = subparsers.add_parser(
        "ocr",
        help="the text in photos (signs, receipts, screenshots, documents)",
        description="Read the text in photos, offline, with PP-OCR's networks on ONNX Runtime "
        "(pip install 'pixelsift[ocr]'). Text at any angle is read, upright or turned 90 or 180 degrees.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_inputs_argument(p)
    add_format_option(p)
    p.add_argument(
        "--min-score",
        type=_score,
        default=MIN_SCORE,
        metavar="S",
        help=f"keep lines the recogniser is at least this sure of (0-1, default {MIN_SCORE})",
    )
    p.add_argument(
        "--detect-size",
        type=int_in(160, 4096),
        default=DETECT_SIZE,
        metavar="PX",
        help=f"the longest side the text detector looks at (default {DETECT_SIZE}; larger finds "
        "smaller text, slower)",
    )
    p.add_argument(
        "--save",
        metavar="DIR",
        default=None,
        help="write a copy of each photo with its lines of text outlined and labelled into DIR",
    )
    add_runner_options(p, None, batch=False, engine=False)
    p.add_argument(
        "--engine",
        default=None,
        choices=("auto", "onnxruntime", "openvino"),
        help="what runs the networks (default: auto, the faster here of those that read a check photo "
        "right, measured once and remembered)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixelsift.ocr.reader import TextReader  # imports rapidocr and onnxruntime: only when it runs

    started = time.perf_counter()
    sources = collect_inputs(args.inputs)
    names = OutputNames.make(args.save) if args.save is not None else None  # a bad folder: before the work
    reader = TextReader(run_options(args), min_score=args.min_score, detect_size=args.detect_size)
    readings = reader.iter_read(
        sources, progress=args.progress, total=len(sources), keep_images=names is not None
    )
    saved: list[int] = []
    if names is not None:
        readings = _saving(readings, names, saved)
    failed = write_readings(readings, args.format)
    if names is not None:
        print(
            f"pixelsift: {len(saved)} photos with their text outlined saved to {args.save}", file=sys.stderr
        )
    closing_line("read", len(sources), failed, started, args.quiet)
    return 1 if failed else 0


def _saving(readings: Iterable[TextReading], names: OutputNames, saved: list[int]) -> Iterator[TextReading]:
    """The readings, each photo's drawn copy written to the --save folder as it passes."""
    from pixelsift.ocr.draw import draw_text_lines

    for reading in readings:
        if reading.ok and reading.image is not None:
            target = names.image_path(reading.path or "image")
            drawn = draw_text_lines(reading.image, reading.lines)
            if target.suffix == ".jpg":
                drawn.save(target, quality=95)
            else:
                drawn.save(target)
            reading.image = None  # constant memory: the photo is not kept past its drawing
            saved.append(1)
        yield reading


def write_readings(readings: Iterable[TextReading], fmt: str) -> int:
    """Print readings as they come; failed inputs go to stderr. Returns how many failed."""
    failed = 0
    if fmt in ("json", "jsonl"):
        with json_writer(fmt) as out:
            for r in readings:
                failed += not r.ok
                if not r.ok:
                    error_line(r.path or "", r.error or "")
                out.write(r.to_dict())
        return failed
    if fmt == "csv":
        writer = csv_writer()
        writer.writerow(["path", "line", "text", "score", "x1", "y1", "x2", "y2", "words", "error"])
        for r in readings:
            failed += not r.ok
            if not r.ok:
                error_line(r.path or "", r.error or "")
                writer.writerow([r.path, "", "", "", "", "", "", "", "", r.error])
            for i, line in enumerate(r.lines):
                box = [round(v, 1) for v in line.box]
                words = " ".join(w.text for w in line.words)
                writer.writerow([r.path, i, line.text, round(line.score, 4), *box, words, ""])
            sys.stdout.flush()
        return failed
    for r in readings:
        failed += not r.ok
        if not r.ok:
            error_line(r.path or "", r.error or "")
            continue
        print(printable(r.path or ""))
        if not r.lines:
            print("  (no text found)\n")
            continue
        rows = [
            (line.text, format_score(line.score), " ".join(str(round(v)) for v in line.box))
            for line in r.lines
        ]
        print(format_table(["Text", "Score", "Box (x1 y1 x2 y2)"], rows, right=(1,)))
        print()
    return failed
