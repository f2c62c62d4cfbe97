"""kill -9 in the middle of `pixelsift index`: the next run finishes the job, the file stays sound."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import write_image
from pixelsift import PhotoIndex

PHOTOS = 120


def committed(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def start_indexing(root: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pixelsift", "index", str(root), "--db", str(db), "--detector", "none", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after(proc: subprocess.Popen[str], db: Path, at_least: int, timeout: float = 300) -> int:
    """SIGKILL the indexer as soon as `at_least` photos are committed; returns how many were."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        count = committed(db)
        if count >= at_least:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return count
        if proc.poll() is not None:
            pytest.fail(
                f"the indexer ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the indexer committed nothing in time")


@pytest.mark.slow
def test_sigkill_mid_run_then_the_next_run_completes_with_every_photo_once(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for i in range(PHOTOS):
        write_image(
            root / f"d{i % 3}" / f"p{i:03d}.jpg", size=(64, 48), color=(i * 2, 255 - i * 2, 80), seed=i
        )
    db = tmp_path / "index.db"

    first = kill_after(start_indexing(root, db), db, at_least=4)
    assert first < PHOTOS, "killed mid-run"
    # A second interrupted run, later in the job: resuming does not start over.
    second = kill_after(start_indexing(root, db), db, at_least=first + 8)
    assert first < second < PHOTOS

    # What a crash leaves behind is a valid database (WAL replay) ...
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()

    # ... and the next run does exactly the rest.
    finished = subprocess.run(
        [sys.executable, "-m", "pixelsift", "index", str(root), "--db", str(db), "--detector", "none", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr
    with PhotoIndex(db) as index:
        conn = index.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        paths = [r[0] for r in conn.execute("SELECT path FROM photos")]
        expected = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
        assert sorted(paths) == expected, "every photo present exactly once"
        assert conn.execute("SELECT COUNT(*) FROM photos WHERE status != 'ok'").fetchone()[0] == 0
        per_photo = conn.execute(
            "SELECT MIN(n), MAX(n) FROM (SELECT COUNT(*) AS n FROM labels GROUP BY photo_id)"
        ).fetchone()
        assert per_photo == (5, 5), "each photo has its complete set of labels, none twice"
        assert (
            conn.execute("SELECT COUNT(*) FROM embeddings WHERE space = 'features'").fetchone()[0] == PHOTOS
        )
        resumed = int(re.search(r"(\d+) new", finished.stdout).group(1))  # type: ignore[union-attr]
        assert 0 < resumed <= PHOTOS - second, "the last run computed only what the killed runs had not"
        again = index.update(root, detector="none")
        assert again.added == again.updated == again.deleted == 0 and again.unchanged == PHOTOS
