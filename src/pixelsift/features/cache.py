"""The on-disk feature cache: penultimate vectors keyed by file content, model and preprocessing.

Training a second classifier on the same photos, predicting photos already seen, or running a grid
search reads vectors from here instead of running the network. One SQLite file in
`$PIXELSIFT_HOME/features/` (WAL, one transaction per batch) holds two tables:

- `files`: path + (size, mtime, ctime, inode) -> sha256, so an unchanged file is not re-read. Any
  write to a file changes its ctime, so a changed file is always re-hashed (and re-embedded).
- `features`: (sha256 of the file, feature key) -> float32 vector BLOB. The feature key is a hash of
  everything that changes the numbers: model name, the sha256 of its weights file, preprocessing,
  precision, engine, and fine-tuned backbone weights when there are any.

Vectors are raw bytes (numpy float32), never pickles.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pixelsift.config import get_settings
from pixelsift.core.hashing import short_digest
from pixelsift.core.sequences import chunks
from pixelsift.core.sqlite import Migration, migrate, script_migration
from pixelsift.core.sqlite import connect as sqlite_connect
from pixelsift.errors import ImageError
from pixelsift.imaging.images import file_sha256, read_error

log = logging.getLogger("pixelsift")

T = TypeVar("T")

DB_NAME = "features.sqlite3"
# Bump when the meaning of a stored vector changes (e.g. a different cut point in the network).
FEATURES_VERSION = 1

# Run by `core.sqlite.migrate`: one transaction each, so a killed process never leaves half a schema.
_MIGRATIONS: list[Migration] = [
    # 1: the first schema
    script_migration(
        """
    CREATE TABLE files (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    CREATE TABLE feature_keys (key TEXT PRIMARY KEY, description TEXT NOT NULL);
    CREATE TABLE features (
        sha256 TEXT NOT NULL,
        key TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (sha256, key)
    ) WITHOUT ROWID;
    """
    ),
]


class _NewerCacheError(sqlite3.DatabaseError):
    """The cache was written by a newer pixelsift: left alone (not moved aside), and not used."""


def _too_new(found: int, known: int) -> sqlite3.DatabaseError:
    return _NewerCacheError(f"its schema {found} is newer than this pixelsift understands ({known})")


def feature_key(description: dict[str, Any]) -> str:
    """A short stable hash of what determines the feature numbers."""
    text = json.dumps({**description, "features_version": FEATURES_VERSION}, sort_keys=True)
    return short_digest(text, 32)


class FeatureCache:
    """Feature vectors and file hashes in one SQLite file (default: `$PIXELSIFT_HOME/features/`).

    >>> cache = FeatureCache()                                        # doctest: +SKIP
    >>> digest = cache.file_digest("photo.jpg")                       # doctest: +SKIP
    >>> cache.get(key, [digest])                                      # doctest: +SKIP
    {}
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None):
        self.folder = Path(folder) if folder is not None else get_settings().features_dir
        self.path = self.folder / DB_NAME
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self.disabled: str | None = None  # why the cache is not used this run (None: it is)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            conn = sqlite_connect(self.path, timeout=60, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, work: Callable[[sqlite3.Connection], T], fallback: T) -> T:
        """`work` on the database; the cache is the user's convenience, never a reason to fail, so:

        - a damaged file (not a database, malformed) is moved aside with a warning and a fresh cache
          starts in its place;
        - a cache that cannot be created or written (read-only home, a file where the folder should
          be, a newer pixelsift's schema) is switched off for this run with a warning, and `fallback`
          returned: features are then computed, as without a cache.
        """
        with self._lock:
            for attempt in (1, 2):
                if self.disabled is not None:
                    return fallback
                try:
                    return work(self._connect())
                except _NewerCacheError as exc:
                    self._disable(str(exc))
                except sqlite3.OperationalError as exc:  # cannot open, read-only, locked for a minute
                    if "disk I/O error" in str(exc) and attempt == 1 and self.path.is_file():
                        self._move_aside(exc)  # what SQLite says of a file cut short
                    else:
                        self._disable(str(exc))
                except sqlite3.DatabaseError as exc:  # the file itself is damaged
                    if attempt == 2:
                        self._disable(str(exc))
                    else:
                        self._move_aside(exc)
                except OSError as exc:
                    self._disable(exc.strerror or str(exc))
            return fallback

    def _disable(self, reason: str) -> None:
        self.close()
        self.disabled = reason
        log.warning(
            "cannot use the feature cache %s (%s); going on without it (features are computed, not "
            "reused; set PIXELSIFT_HOME to a writable folder to keep them)",
            self.path,
            reason,
        )

    def _move_aside(self, exc: Exception) -> None:
        self.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for n in range(2, 1000):  # never replace an earlier damaged copy
            if not target.exists():
                break
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self.path, target)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        except OSError as move_error:
            self._disable(f"{exc}; it could not be moved aside: {move_error.strerror}")
            return
        log.warning(
            "the feature cache %s was damaged (%s); moved it to %s and started a fresh one",
            self.path,
            exc,
            target.name,
        )

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        migrate(conn, _MIGRATIONS, too_new=_too_new)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- file hashes -------------------------------------------------------------------------------

    def file_digests(self, paths: Sequence[str | os.PathLike[str]]) -> list[str | ImageError]:
        """The sha256 of each file, from the `files` table when its stat is unchanged, else by reading
        it; an `ImageError` in place of a file that cannot be read."""
        keys = [os.path.abspath(p) for p in paths]
        stats: list[os.stat_result | ImageError] = []
        for path in paths:
            try:
                stats.append(os.stat(path))
            except OSError as exc:
                stats.append(read_error(path, exc))

        def lookup(conn: sqlite3.Connection) -> dict[str, tuple[Any, ...]]:
            found: dict[str, tuple[Any, ...]] = {}
            for chunk in chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                found.update(
                    (row[0], row[1:])
                    for row in conn.execute(
                        "SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM files "
                        f"WHERE path IN ({marks})",
                        chunk,
                    )
                )
            return found

        none_known: dict[str, tuple[Any, ...]] = {}
        known = self._run(lookup, none_known)
        results: list[str | ImageError] = []
        updates = []
        for path, key, st in zip(paths, keys, stats, strict=True):
            if isinstance(st, ImageError):
                results.append(st)
                continue
            signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            row = known.get(key)
            if row is not None and tuple(row[:4]) == signature:
                results.append(row[4])
                continue
            try:
                digest = file_sha256(path)
            except ImageError as exc:
                results.append(exc)
                continue
            results.append(digest)
            updates.append((key, *signature, digest))
        if updates:

            def store(conn: sqlite3.Connection) -> None:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", updates)

            self._run(store, None)
        return results

    def file_digest(self, path: str | os.PathLike[str]) -> str:
        (result,) = self.file_digests([path])
        if isinstance(result, ImageError):
            raise result
        return result

    # -- vectors ------------------------------------------------------------------------------------

    def get(self, key: str, digests: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached vectors for these file digests under `key` (missing ones are simply absent)."""
        wanted = list(dict.fromkeys(digests))

        def lookup(conn: sqlite3.Connection) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for chunk in chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                for digest, dim, blob in conn.execute(
                    f"SELECT sha256, dim, vector FROM features WHERE key = ? AND sha256 IN ({marks})",
                    [key, *chunk],
                ):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (dim,):  # a damaged row is recomputed, never used
                        found[digest] = vector
            return found

        nothing: dict[str, np.ndarray] = {}
        return self._run(lookup, nothing)

    def put(self, key: str, description: dict[str, Any], rows: Iterable[tuple[str, np.ndarray]]) -> int:
        """Store vectors (digest, float32 vector) under `key`, in one transaction. Returns how many."""
        records = [
            (digest, key, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for digest, v in rows
        ]
        if not records:
            return 0

        def store(conn: sqlite3.Connection) -> int:
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO feature_keys VALUES (?, ?)",
                    (key, json.dumps(description, sort_keys=True)),
                )
                conn.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?)", records)
            return len(records)

        return self._run(store, 0)

    def count(self, key: str | None = None) -> int:
        """Vectors stored (under `key`, or in all); 0 when the cache is switched off."""

        def counted(conn: sqlite3.Connection) -> int:
            if key is None:
                return int(conn.execute("SELECT COUNT(*) FROM features").fetchone()[0])
            return int(conn.execute("SELECT COUNT(*) FROM features WHERE key = ?", (key,)).fetchone()[0])

        return self._run(counted, 0)

    def clear(self) -> None:
        """Forget every cached vector and file hash."""

        def cleared(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("DELETE FROM features")
                conn.execute("DELETE FROM feature_keys")
                conn.execute("DELETE FROM files")

        self._run(cleared, None)
