"""`pixelsift index --watch` / `PhotoIndex.watch`: a photo added, moved and deleted while the index is
watched is indexed, followed and dropped, after the folder has been quiet for the debounce time; with
file events (watchdog) and by comparing listings; the command stops cleanly on Ctrl-C."""

from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import REPO, write_image
from pixelsift.library import PhotoIndex

WAIT = 120  # seconds an update may take on a busy machine (the classifier loads on the first new photo)


def next_report(reports: queue.Queue, check) -> object:  # type: ignore[no-untyped-def, type-arg]
    """The first report from now on that passes `check`."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        report = reports.get(timeout=max(0.1, deadline - time.monotonic()))
        if check(report):
            return report
    raise AssertionError("no update saw the change")


@pytest.mark.parametrize("events", [True, False], ids=["file-events", "polling"])
def test_a_photo_added_moved_and_deleted_is_followed(tmp_path: Path, events: bool) -> None:
    if events and importlib.util.find_spec("watchdog") is None:
        pytest.skip("file events need pip install 'pixelsift[watch]'")
    root = tmp_path / "photos"
    write_image(root / "first.jpg", size=(64, 48), seed=1)
    reports: queue.Queue = queue.Queue()  # type: ignore[type-arg]
    stop = threading.Event()
    with PhotoIndex(tmp_path / "i.db") as index:
        how: list[str] = []
        thread = threading.Thread(
            target=lambda: how.append(
                index.watch(root, stop=stop, debounce=0.3, interval=0.3, use_events=events,
                            on_report=reports.put, detector="none")
            )
        )  # fmt: skip
        thread.start()
        try:
            assert next_report(reports, lambda r: r.added == 1).photos == 1  # the first update
            write_image(root / "later.jpg", size=(64, 48), seed=2)
            assert next_report(reports, lambda r: r.added == 1).photos == 2
            (root / "trip").mkdir()
            shutil.move(root / "later.jpg", root / "trip" / "later.jpg")
            assert next_report(reports, lambda r: r.moved == 1).photos == 2
            (root / "trip" / "later.jpg").unlink()
            assert next_report(reports, lambda r: r.deleted == 1).photos == 1
        finally:
            stop.set()
            thread.join(30)
        assert not thread.is_alive() and how == ["events" if events else "polling"]
        assert [p for (p,) in index.conn.execute("SELECT path FROM photos")] == ["first.jpg"]


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_the_command_prints_a_line_per_update_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    write_image(root / "first.jpg", size=(64, 48), seed=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "pixelsift", "index", str(root), "--db", str(tmp_path / "i.db"),
         "--watch", "--debounce", "0.3", "--detector", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert "1 photos" in first and "1 new" in first, first
        write_image(root / "later.jpg", size=(64, 48), seed=2)
        second = process.stdout.readline()
        assert "2 photos" in second and "1 new" in second, second
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "stopped watching" in err and "Traceback" not in err, err


def test_a_bad_debounce_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pixelsift", "index", str(tmp_path), "--watch", "--debounce", "0"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "--debounce must be above 0" in done.stderr
