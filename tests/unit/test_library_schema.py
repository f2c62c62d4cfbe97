"""Opening an index: a transient SQLite lock while another process creates the file is retried; a file
that is not an index is refused at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pixelsift.errors import LibraryFileError
from pixelsift.library import schema


def test_a_transient_lock_at_open_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = schema.migrate
    calls: list[int] = []

    def busy_once(conn: sqlite3.Connection, target: int = schema.SCHEMA_VERSION) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")  # as while another process creates it
        return real(conn, target=target)

    monkeypatch.setattr(schema, "migrate", busy_once)
    monkeypatch.setattr(schema.time, "sleep", lambda s: None)
    conn = schema.connect(tmp_path / "i.db")
    assert len(calls) == 2 and schema.schema_version(conn) == schema.SCHEMA_VERSION
    conn.close()


def test_a_lock_that_never_goes_and_a_damaged_file_are_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_busy(conn: sqlite3.Connection, target: int = 0) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(schema.time, "sleep", lambda s: None)
    with monkeypatch.context() as patched:
        patched.setattr(schema, "migrate", always_busy)
        with pytest.raises(LibraryFileError, match="database is locked"):
            schema.connect(tmp_path / "busy.db")
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\0" + b"\xff" * 200)
    with pytest.raises(LibraryFileError, match="not a readable pixelsift index"):
        schema.connect(damaged)
