"""Keeping an index current while photos arrive, move and go: `pixelsift index --watch`.

The folder is indexed once, then again each time it has been quiet for `debounce` seconds after a
change, so a copy of a hundred photos is one update, not a hundred. Changes are seen through the
operating system's file events (watchdog: inotify, FSEvents, ReadDirectoryChangesW) when watchdog is
installed (`pixelsift[watch]`); otherwise the folder's listing (names, sizes, times) is compared every
`interval` seconds. Each update is the ordinary `PhotoIndex.update`: moves keep their entry, deleted
photos are dropped, and an update that finds nothing new costs a walk of the folder.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelsift.library.changes import scan_folder

log = logging.getLogger("pixelsift")

DEBOUNCE_SECONDS = 2.0  # quiet time after the last change before the index is updated
POLL_SECONDS = 10.0  # without watchdog: how often the folder's listing is compared


def watch_folder(
    update: Callable[[], Any],
    folder: Path,
    stop: threading.Event,
    debounce: float = DEBOUNCE_SECONDS,
    interval: float = POLL_SECONDS,
    ignore: tuple[str, ...] = (),
    use_events: bool = True,
) -> str:
    """Run `update()` now, then after every burst of changes in `folder`, until `stop` is set.
    `ignore`: path prefixes whose changes are not the library's (an index file kept in the folder).
    Returns how changes were seen: "events" (watchdog) or "polling"."""
    changed = _ChangeFlag(ignore)
    observer = _start_observer(folder, changed) if use_events else None
    how = "events" if observer is not None else "polling"
    try:
        # the listing is taken before each update: a change made while it runs (or just after) then
        # differs from it and is seen, at worst costing one more update
        listing = None if observer is not None else _listing(folder)
        update()
        while not stop.is_set():
            if observer is None:
                stop.wait(interval)
                if stop.is_set():
                    break
                now = _listing(folder)
                if now != listing:
                    listing = now
                    changed.mark()
            else:
                stop.wait(min(0.2, debounce))
            if changed.quiet_for(debounce):
                changed.clear()
                if observer is None:
                    listing = _listing(folder)
                update()
    finally:
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
    return how


class _ChangeFlag:
    """When the folder last changed (None: not since the last update)."""

    def __init__(self, ignore: tuple[str, ...]):
        self.ignore = ignore
        self._at: float | None = None
        self._lock = threading.Lock()

    def mark(self, path: str | None = None) -> None:
        if path is not None and self.ignore and path.startswith(self.ignore):
            return
        with self._lock:
            self._at = time.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        with self._lock:
            return self._at is not None and time.monotonic() - self._at >= seconds

    def clear(self) -> None:
        with self._lock:
            self._at = None


def _listing(folder: Path) -> dict[str, Any]:
    """The photos' (size, mtime) by path, as an update sees them."""
    return dict(scan_folder(folder))


def _start_observer(folder: Path, changed: _ChangeFlag) -> Any:
    """A running watchdog observer that marks every change under `folder`; None without watchdog."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        log.info("watch: watchdog is not installed; comparing the folder every %.0f s", POLL_SECONDS)
        return None

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return  # reading a photo changes nothing
            changed.mark(os.fsdecode(event.src_path))

    observer = Observer()
    observer.schedule(Handler(), str(folder), recursive=True)
    observer.daemon = True
    observer.start()
    return observer
