"""The transactional migration runner both pixelsift databases use (photo index, feature cache)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from pixelsift.core.sqlite import migrate, schema_version, script_migration, transaction
from pixelsift.features import cache as feature_cache
from pixelsift.features.cache import FeatureCache


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def too_new(found: int, known: int) -> Exception:
    return RuntimeError(f"schema {found} > {known}")


def test_each_migration_runs_once_and_records_its_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    steps = [
        script_migration("CREATE TABLE a (x); CREATE TABLE b (y)"),
        script_migration("CREATE TABLE c (z)"),
    ]
    assert migrate(conn, steps, too_new=too_new, target=1) == 0
    assert schema_version(conn) == 1 and tables(conn) == {"a", "b"}
    assert migrate(conn, steps, too_new=too_new) == 1
    assert migrate(conn, steps, too_new=too_new) == 2  # nothing left to do: no "table exists" error
    assert schema_version(conn) == 2 and tables(conn) == {"a", "b", "c"}


def test_a_failing_migration_leaves_the_previous_version_whole(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    broken = [script_migration("CREATE TABLE a (x); CREATE TABLE b (y); NOT SQL AT ALL")]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken, too_new=too_new)
    assert schema_version(conn) == 0 and tables(conn) == set()  # the first statements rolled back too


def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    conn.execute("PRAGMA user_version = 7")
    with pytest.raises(RuntimeError, match="schema 7 > 1"):
        migrate(conn, [script_migration("CREATE TABLE a (x)")], too_new=too_new)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    conn.execute("CREATE TABLE a (x)")
    with pytest.raises(KeyError), transaction(conn):
        conn.execute("INSERT INTO a VALUES (1)")
        raise KeyError("stop")
    assert conn.execute("SELECT COUNT(*) FROM a").fetchone()[0] == 0


def test_the_feature_cache_migrates_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = list(feature_cache._MIGRATIONS)
    half = script_migration("CREATE TABLE files (path TEXT); CREATE TABLE oops (")  # fails after one table
    monkeypatch.setattr(feature_cache, "_MIGRATIONS", [half])
    broken = FeatureCache(tmp_path)
    assert broken.count() == 0 and broken.disabled is not None  # the run goes on without a cache
    conn = sqlite3.connect(tmp_path / feature_cache.DB_NAME)
    assert schema_version(conn) == 0 and tables(conn) == set()  # `executescript` would have kept `files`
    conn.close()

    monkeypatch.setattr(feature_cache, "_MIGRATIONS", good)
    with FeatureCache(tmp_path) as cache:  # the next open runs the real migration from scratch
        cache.put("k", {"model": "m"}, [("d" * 64, np.ones(3, np.float32))])
        assert cache.count("k") == 1
