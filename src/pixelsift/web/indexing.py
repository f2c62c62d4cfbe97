"""`pixelsift serve --index FOLDER`: the server keeps the library's index current in the background
(`PhotoIndex.watch` in a thread of its own, with its own connection: the page's searches read while
it writes) and says how far it has got: `GET /api/index/status`, shown on the page."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from pixelsift.core.progress import observed
from pixelsift.errors import PixelsiftError, short_reason

log = logging.getLogger("pixelsift")

STEPS = {"index": "indexing photos", "catch up": "catching up older photos"}


class BackgroundIndexer:
    """Indexes `folder` into `db`, then watches it, in a daemon thread; `status()` says how it goes."""

    def __init__(self, folder: Path, db: Path, options: dict[str, Any]):
        self.folder = folder
        self.db = db
        self.options = options
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "state": "starting",
            "folder": folder.name or str(folder),
            "updates": 0,
        }
        self._thread = threading.Thread(target=self._run, name="pixelsift-index", daemon=True)
        self._step_started = 0.0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=10)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def _set(self, **values: Any) -> None:
        with self._lock:
            self._status.update(values)

    def _progress(self, step: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if done == 0:
            self._step_started = now
        elapsed = now - self._step_started
        rate = done / elapsed if done and elapsed > 0 else None
        left = (total - done) / rate if rate and total is not None else None
        self._set(
            state="indexing",
            step=STEPS.get(step, step),
            done=done,
            total=total,
            rate=None if rate is None else round(rate, 2),
            seconds_left=None if left is None else round(left),
        )

    def _reported(self, report: Any) -> None:
        with self._lock:
            self._status.update(
                state="watching",
                step=None,
                done=None,
                total=None,
                rate=None,
                seconds_left=None,
                updates=int(self._status.get("updates", 0)) + 1,
                photos=report.photos,
                last=report.summary(with_root=False),  # the page is never told the server's paths
                last_at=time.time(),
            )

    def _run(self) -> None:
        from pixelsift.library import PhotoIndex  # the library's code, in this thread only

        try:
            with observed(self._progress), PhotoIndex(self.db) as index:
                how = index.watch(self.folder, stop=self.stop, on_report=self._reported, **self.options)
            log.info("serve: stopped watching %s (changes seen by %s)", self.folder, how)
        except PixelsiftError as exc:
            self._set(state="failed", error=str(exc))
            log.error("serve: indexing %s stopped: %s", self.folder, exc)
        except Exception as exc:  # the thread must say why it stopped, never die silently
            self._set(state="failed", error=short_reason(exc))
            log.exception("serve: indexing %s failed", self.folder)
