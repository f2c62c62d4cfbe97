"""sha256 of bytes and files: content identity for photos, weights, feature caches and model files."""

from __future__ import annotations

import hashlib
import os

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
