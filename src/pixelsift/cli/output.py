"""Printing: aligned tables, streamed JSON arrays and CSV on stdout; one-line errors on stderr."""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Sequence
from typing import IO, Any

import numpy as np


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


# Control characters (a newline or an escape sequence in a file name) would split a line of output or
# drive the terminal: they are shown escaped, as Python writes them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x1b`): one line, nothing the terminal obeys."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _finite(obj: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers (Python would write `NaN`)."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    """Valid JSON whatever the values: numpy types converted, NaN and infinities as null."""
    return json.dumps(_finite(obj), indent=indent, default=_json_default, ensure_ascii=False, allow_nan=False)


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
    """Writes a JSON array one element at a time, so long runs stream instead of buffering."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self.count = 0

    def __enter__(self) -> JsonArrayWriter:
        self.stream.write("[")
        return self

    def write(self, obj: Any) -> None:
        text = to_json(obj, indent=2).replace("\n", "\n  ")
        self.stream.write(("," if self.count else "") + "\n  " + text)
        self.stream.flush()
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.stream.write("\n]\n" if self.count else "]\n")
        self.stream.flush()


def csv_writer(stream: IO[str] | None = None) -> Any:
    return csv.writer(stream or sys.stdout, lineterminator="\n")


def error_line(path: str, reason: str) -> None:
    """The one-line report of a failed input, on stderr."""
    print(f"pixelsift: {printable(path)}: {printable(reason)}", file=sys.stderr, flush=True)
