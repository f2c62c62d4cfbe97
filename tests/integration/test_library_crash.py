"""kill -9 in the middle of `pixelsift index`: the next run finishes the job, the file stays sound."""

from __future__ import annotations

import os
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
from pixelsift.imaging import scene

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
        complete = 5 + len(scene.REGIONS)  # the classifier's top 5 and every scene region
        assert per_photo == (complete, complete), "each photo has its complete set of labels, none twice"
        assert (
            conn.execute("SELECT COUNT(*) FROM embeddings WHERE space = 'features'").fetchone()[0] == PHOTOS
        )
        resumed = int(re.search(r"(\d+) new", finished.stdout).group(1))  # type: ignore[union-attr]
        assert 0 < resumed <= PHOTOS - second, "the last run computed only what the killed runs had not"
        again = index.update(root, detector="none")
        assert again.added == again.updated == again.deleted == 0 and again.unchanged == PHOTOS


SOURCE_RUN = '''
import os, sys, time
import numpy as np
from pixelsift import PhotoIndex

class Mean:
    """A made-up evidence source: each photo's mean colour in the meta table; its writes are logged."""
    min_size = 16
    concurrent = True
    exact = False
    def __init__(self, key):
        self.key = key
    def owed(self, store):
        done = {k for (k,) in store.conn.execute("SELECT key FROM meta WHERE key LIKE ?", (self.key + ":%",))}
        return [(i, p) for i, p in store.conn.execute("SELECT id, path FROM photos WHERE status = 'ok'")
                if f"{self.key}:{i}" not in done]
    def prepare(self, image):
        return np.asarray(image.convert("RGB"), np.float32).mean(axis=(0, 1))
    def compute(self, prepared):
        time.sleep(0.02)  # slow enough to be killed in the middle
        return [str(p.round(1).tolist()) for p in prepared]
    def write(self, store, photo_id, seq, result):
        store.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           (f"{self.key}:{photo_id}", result))
        with open(os.environ["WRITES"], "a") as log:
            log.write(f"{self.key}:{photo_id}\\n")

root, db, keys = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
with PhotoIndex(db) as index:
    report = index.update(root, detector="none", sources=[Mean(k) for k in keys], batch_size=4)
print(report.summary())
'''


def meta_keys(db: Path, key: str) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return {k for (k,) in conn.execute("SELECT key FROM meta WHERE key LIKE ?", (f"{key}:%",))}
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_in_a_run_with_sources_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    """Sources write in the same transactions as the photos: a run killed while the classifier and a
    source compute new photos, or while a source catches up, leaves whole batches; the next run
    computes exactly the rest (each photo's source row is written once after the kills)."""
    root = tmp_path / "photos"
    for i in range(PHOTOS):
        write_image(root / f"p{i:03d}.jpg", size=(64, 48), color=(i * 2, 255 - i * 2, 80), seed=i)
    db, script, writes = tmp_path / "index.db", tmp_path / "run.py", tmp_path / "writes.log"
    script.write_text(SOURCE_RUN)

    def start(keys: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(script), str(root), str(db), keys],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "WRITES": str(writes)},
        )

    def finish(keys: str) -> list[str]:
        writes.unlink(missing_ok=True)
        proc = start(keys)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        return writes.read_text().split() if writes.exists() else []

    # 1. killed while new photos go through the classifier and the source
    first = kill_after(start("first"), db, at_least=8)
    assert first < PHOTOS, "killed mid-run"
    with PhotoIndex(db) as index:
        ids = {i for (i,) in index.conn.execute("SELECT id FROM photos")}
    before = meta_keys(db, "first")
    assert before == {f"first:{i}" for i in ids}, "each committed photo has its source's row with it"
    written = finish("first")
    assert len(written) == len(set(written)) == PHOTOS - first and not set(written) & before
    assert len(meta_keys(db, "first")) == PHOTOS

    # 2. killed while a source new to the library catches up on the older photos
    writes.unlink(missing_ok=True)
    proc = start("first,second")
    deadline = time.time() + 300
    while len(meta_keys(db, "second")) < 8 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    caught = meta_keys(db, "second")
    assert 0 < len(caught) < PHOTOS, "killed in the middle of the catch-up"
    written = finish("first,second")
    assert len(written) == len(set(written)) == PHOTOS - len(caught) and not set(written) & caught
    assert len(meta_keys(db, "second")) == len(meta_keys(db, "first")) == PHOTOS
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
