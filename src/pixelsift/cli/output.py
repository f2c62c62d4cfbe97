"""Printing: aligned tables, streamed JSON arrays and CSV on stdout; one-line errors on stderr."""

from __future__ import annotations

import csv
import math
import re
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from pixelsift.core.jsontext import to_json
from pixelsift.core.paths import path_text
from pixelsift.core.progress import write_line

__all__ = [
    "JsonArrayWriter",
    "csv_writer",
    "error_line",
    "format_score",
    "format_table",
    "printable",
    "to_json",
]


# Control characters (a newline or an escape sequence in a file name) would split a line of output or
# drive the terminal: they are shown escaped, as Python writes them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x1b`): one line, nothing the terminal obeys;
    the bytes of a file name that are not UTF-8 as `\\xNN` (`core.paths.path_text`)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], path_text(text))


def format_score(value: float | None, places: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{places}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """Plain aligned columns; columns whose index is in `right` are right-aligned (numbers)."""
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else printable(str(c)) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


class JsonArrayWriter:
    """Writes a JSON array one element at a time, so long runs stream instead of buffering; with
    `lines`, JSON Lines instead (`--format jsonl`: one object per line, no brackets)."""

    def __init__(self, stream: IO[str] | None = None, lines: bool = False):
        self.stream = stream or sys.stdout
        self.lines = lines
        self.count = 0

    def __enter__(self) -> JsonArrayWriter:
        if not self.lines:
            self.stream.write("[")
        return self

    def write(self, obj: Any) -> None:
        if self.lines:
            self.stream.write(to_json(obj, indent=None) + "\n")
        else:
            text = to_json(obj, indent=2).replace("\n", "\n  ")
            self.stream.write(("," if self.count else "") + "\n  " + text)
        self.stream.flush()
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        if not self.lines:
            self.stream.write("\n]\n" if self.count else "]\n")
        self.stream.flush()


def json_writer(fmt: str) -> JsonArrayWriter:
    """The streaming writer of `--format json` (an array) or `--format jsonl` (JSON Lines)."""
    return JsonArrayWriter(lines=fmt == "jsonl")


class _CsvWriter:
    """csv.writer whose text cells are valid UTF-8 (a file name that is not: `\\xNN` escapes)."""

    def __init__(self, stream: IO[str]):
        self._writer = csv.writer(stream, lineterminator="\n")

    def writerow(self, row: Sequence[Any]) -> None:
        self._writer.writerow([path_text(c) if isinstance(c, str) else c for c in row])


def csv_writer(stream: IO[str] | None = None) -> _CsvWriter:
    return _CsvWriter(stream or sys.stdout)


def closing_line(verb: str, total: int, failed: int, started: float, quiet: bool = False) -> None:
    """The run's last line on stderr: "pixelsift: classified 7 inputs in 2.1 s", and how many failed
    ("...; 2 of 7 inputs failed"). `-q` leaves out the line of a run where nothing failed."""
    took = f"in {time.perf_counter() - started:.1f} s"
    if failed:
        line = (
            f"pixelsift: {verb} {total - failed} of {total} inputs {took}; {failed} of {total} inputs failed"
        )
    else:
        line = f"pixelsift: {verb} {total} input{'s' * (total != 1)} {took}"
    if failed or not quiet:
        write_line(line)


def error_line(path: str, reason: str) -> None:
    """The one-line report of a failed input, on stderr, above the progress bar if one is on show."""
    write_line(f"pixelsift: {printable(path)}: {printable(reason)}")
