"""One writer per index: a second `pixelsift index` waits for the first, says so, and does not redo
its work; photo ids never change."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from helpers import REPO, write_image
from pixelsift.core.filelock import exclusive_lock
from pixelsift.library import PhotoIndex


def start_index(photos: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixelsift",
            "index",
            str(photos),
            "--db",
            str(db),
            "--detector",
            "none",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_a_second_indexer_waits_for_the_lock_and_says_so(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(3):
        write_image(photos / f"{i}.jpg", seed=i)
    db = tmp_path / "index.db"
    with exclusive_lock(f"{db}.lock"):  # as if another indexer were running
        waiting = start_index(photos, db)
        time.sleep(8)  # time to import, open the index and reach the lock
        assert waiting.poll() is None, waiting.communicate()  # still waiting: nothing was indexed
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert "is updating" in err and "waiting for it to finish" in err and "Traceback" not in err
    assert "3 new" in out


def test_two_indexers_at_once_do_the_work_once_and_keep_the_ids(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(12):
        write_image(photos / f"{i:02d}.jpg", seed=i)
    db = tmp_path / "index.db"
    first, second = start_index(photos, db), start_index(photos, db)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    summaries = sorted(out for out, _ in outputs)
    assert sum("12 new" in s for s in summaries) == 1, summaries
    assert sum("12 unchanged" in s for s in summaries) == 1, summaries
    with PhotoIndex(db, create=False) as index:
        rows = index.conn.execute("SELECT id, path FROM photos ORDER BY path").fetchall()
    assert [i for i, _ in rows] == list(range(1, 13))  # no entry was deleted and made again
