"""File names as the operating system gives them.

On Linux a file name is bytes, and not every name is UTF-8 (`bad\\xff\\xfename.jpg`, copied from an old
camera card or a Latin-1 system). Python carries the bytes that are not UTF-8 as lone surrogates
(PEP 383, `os.fsdecode`), so such a `str` opens the right file but cannot be written as UTF-8. pixelsift
keeps the name as the OS gave it everywhere inside, and converts it at the edges:

- to show it (tables, JSON, CSV, messages, the web): `path_text`, valid UTF-8 with each byte that is not
  UTF-8 written `\\xNN`, as `ls -b` and Python's `repr` do;
- to store it: SQLite keeps such a name as its raw bytes (`core.sqlite.connect` does it for every
  statement), Parquet as the readable `path` plus a `path_bytes` column (`path_columns`), both
  reversible.

>>> path_text("/photos/" + b"caf\\xe9.jpg".decode("utf-8", "surrogateescape"))
'/photos/caf\\\\xe9.jpg'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def is_utf8(text: str) -> bool:
    """True when `text` can be written as UTF-8 (no byte of it came from a name that was not)."""
    return text.isascii() or _SURROGATE.search(text) is None


def path_text(path: str | os.PathLike[str]) -> str:
    """`path` as valid UTF-8 text: unchanged when it is, else each byte that is not UTF-8 as `\\xNN`."""
    text = os.fspath(path)
    return text if is_utf8(text) else _SURROGATE.sub(_escape, text)


def path_columns(paths: Iterable[Any]) -> dict[str, list[Any]]:
    """The columns a table of files stores its paths in: `path` (text, for people and other tools) and,
    only when some name is not UTF-8, `path_bytes` (every row's name as bytes, so it can be opened).
    `None` stays `None`."""
    paths = list(paths)
    texts = [None if p is None else os.fspath(p) for p in paths]
    columns: dict[str, list[Any]] = {"path": [None if t is None else path_text(t) for t in texts]}
    if any(t is not None and not is_utf8(t) for t in texts):
        columns["path_bytes"] = [None if t is None else os.fsencode(t) for t in texts]
    return columns


def paths_from_columns(text: Iterable[str | None], raw: Iterable[bytes | None] | None = None) -> list[str]:
    """The file names stored by `path_columns`, back as the OS gave them."""
    if raw is None:
        return [t for t in text if t]
    names = [os.fsdecode(r) if r is not None else t for t, r in zip(text, raw, strict=True)]
    return [n for n in names if n]


def _has_raw_name(values: Any) -> bool:
    if isinstance(values, np.ndarray) and values.dtype != object:
        return False
    return any(isinstance(v, str) and not is_utf8(v) for v in values)


def data_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """`pd.DataFrame(columns)`, also when a file name is not UTF-8: pandas' Arrow-backed text cannot hold
    one, so such a column stays Python strings (dtype object) with the names exactly as the OS gave them
    (`open()` and PIL take them)."""
    import pandas as pd  # pandas only where a table is built

    exact = [name for name, values in columns.items() if _has_raw_name(values)]
    frame = pd.DataFrame(
        {
            name: ([path_text(v) if isinstance(v, str) else v for v in values] if name in exact else values)
            for name, values in columns.items()
        }
    )
    for name in exact:
        frame[name] = pd.Series(list(columns[name]), dtype=object, index=frame.index)
    return frame
