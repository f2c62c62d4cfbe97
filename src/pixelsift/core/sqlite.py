"""SQLite helpers shared by pixelsift's two database files (the photo index and the feature cache):
explicit transactions and one numbered, transactional migration runner.

The schema version is SQLite's `user_version`; `migrations[i]` takes a database from version i to i+1
inside the same transaction that records the new version, so a migration happens entirely or not at
all (a process killed halfway leaves the previous version, and the next open runs it again). Never edit
a released migration: add a new one.

Both files are opened with `connect`, which stores a file name that is not UTF-8 as its raw bytes and
reads it back as the OS gave it (see `core.paths`), in every statement.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pixelsift.core.paths import is_utf8

Migration = Callable[[sqlite3.Connection], None]


def _parameter(value: Any) -> Any:
    # A name that is not UTF-8 cannot be bound as TEXT; its raw bytes (a BLOB) can, and compare, sort and
    # stay unique as exactly that name.
    return os.fsencode(value) if isinstance(value, str) and not is_utf8(value) else value


def _parameters(params: Any) -> Any:
    if isinstance(params, dict):
        return {key: _parameter(v) for key, v in params.items()}
    return tuple(_parameter(v) for v in params)


def _text(value: bytes) -> str:
    # Every column declared TEXT, read back: UTF-8, and the bytes of a name that is not UTF-8 as
    # surrogates, exactly as `os.fsdecode` gives them.
    return value.decode("utf-8", "surrogateescape")


class _Connection(sqlite3.Connection):
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _parameters(parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return super().executemany(sql, (_parameters(p) for p in parameters))


sqlite3.register_converter("TEXT", _text)


def connect(database: str | os.PathLike[str], **kwargs: Any) -> sqlite3.Connection:
    """`sqlite3.connect` for pixelsift's files: any file name can be stored, queried and read back."""
    return sqlite3.connect(database, factory=_Connection, detect_types=sqlite3.PARSE_DECLTYPES, **kwargs)


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (`executescript` would commit it).

    A `;` inside a statement (a trigger's body, a literal) stays in it: pieces are joined until SQLite
    says the statement is complete."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n\t;"):
                conn.execute(statement)
            statement = ""
    if statement.strip(" \n\t;"):
        conn.execute(statement)


def script_migration(script: str) -> Migration:
    """A migration that runs one SQL script (see `run_script`)."""

    def migration(conn: sqlite3.Connection) -> None:
        run_script(conn, script)

    return migration


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception). IMMEDIATE takes the write lock up front,
    so two writers queue instead of failing halfway with "database is locked"."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration],
    *,
    too_new: Callable[[int, int], Exception],
    on_create: Migration | None = None,
    target: int | None = None,
) -> int:
    """Bring the schema to `target` (default: the last migration), one migration per transaction;
    returns the version it started at.

    `too_new(found, known)` is the error raised for a file written by a newer release; `on_create`
    runs in the first migration's transaction (e.g. to record when the file was created)."""
    known = len(migrations)
    target = known if target is None else target
    start = schema_version(conn)
    if start > known:
        raise too_new(start, known)
    for version in range(start, target):
        with transaction(conn):
            if schema_version(conn) != version:  # another process migrated it meanwhile
                continue
            migrations[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            if version == 0 and on_create is not None:
                on_create(conn)
    return start
