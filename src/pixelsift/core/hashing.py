"""sha256 of bytes and files: content identity for photos, weights, feature caches and model files."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (constant memory). OSError propagates."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def short_digest(text: str, length: int = 16) -> str:
    """A short stable name for `text` (a path, a description): the first hex digits of its sha256."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def remembered_sha256(path: str | os.PathLike[str], memo: Path) -> str:
    """`sha256_file(path)`, hashed once per (path, size, mtime) and remembered in the JSON file `memo`
    (a 70 MB weights file takes a few tenths of a second to hash; a changed file is hashed again)."""
    stat = os.stat(path)
    ident = f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
    known: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError, TypeError):
        known = dict(json.loads(memo.read_text()))
    if ident not in known:
        known[ident] = sha256_file(path)
        with contextlib.suppress(OSError):  # a read-only home: hash again next time
            memo.parent.mkdir(parents=True, exist_ok=True)
            partial = memo.with_name(f".{memo.name}.{os.getpid()}.partial")
            partial.write_text(json.dumps(known, indent=0, sort_keys=True))
            partial.replace(memo)
    return known[ident]
