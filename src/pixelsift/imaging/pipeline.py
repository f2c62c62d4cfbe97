"""The input pipeline: decode and preprocess images in worker threads while the model runs.

`iter_batches` reads paths lazily, decodes them in a thread pool (Pillow releases the GIL while it
decodes and resizes), and hands out batches in input order through a bounded queue, so memory stays
flat however large the folder and the model never waits for a decode it could have overlapped.
Failed inputs travel in the same order as `Item`s with an `error`, so callers report them in place.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.config import available_cpus
from pixelsift.errors import ImageError

Decoder = Callable[[str], tuple[np.ndarray, Any]]


@dataclass
class Item:
    """One input: its path, its position in the input stream, and either a row of pixels or an error."""

    path: str
    index: int
    error: str | None = None
    info: Any = None  # what the decoder returned beside the pixels (e.g. the original size)
    row: int = -1  # row in `Batch.pixels`

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Batch:
    items: list[Item]
    pixels: np.ndarray  # (number of ok items, C, H, W) float32
    ok_items: list[Item] = field(init=False)

    def __post_init__(self) -> None:
        self.ok_items = [item for item in self.items if item.ok]
        if len(self.ok_items) != len(self.pixels):
            raise ValueError(f"{len(self.ok_items)} decoded items but {len(self.pixels)} rows of pixels")


def default_decode_workers() -> int:
    return max(2, min(8, available_cpus()))


_DONE = object()


class _ProducerFailed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _decode_one(decode: Decoder, path: str) -> tuple[np.ndarray, Any] | ImageError:
    try:
        return decode(path)
    except ImageError as exc:
        return exc


def iter_batches(
    sources: Iterable[str | Path | ImageError],
    decode: Decoder,
    batch_size: int = 32,
    workers: int | None = None,
    queued_batches: int = 2,
) -> Iterator[Batch]:
    """Batches of decoded inputs, in input order, with failures kept in place.

    `decode(path)` returns `(pixels CHW float32, info)` or raises `ImageError`. At most
    `batch_size + workers` decodes are in flight and `queued_batches` finished batches wait, which
    bounds memory. Closing the iterator early stops the workers.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    workers = workers or default_decode_workers()
    handoff: queue.Queue[Any] = queue.Queue(maxsize=max(1, queued_batches))
    stop = threading.Event()

    def put(obj: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        items: list[Item] = []
        rows: list[np.ndarray] = []

        def flush() -> bool:
            nonlocal items, rows
            pixels = np.stack(rows) if rows else np.zeros((0, 3, 1, 1), np.float32)
            ok = put(Batch(items, pixels))
            items, rows = [], []
            return ok

        def settle(index: int, path: str, pending: Future[Any] | ImageError) -> bool:
            result = pending if isinstance(pending, ImageError) else pending.result()
            if isinstance(result, ImageError):
                items.append(Item(path, index, error=result.reason))
            else:
                pixels, info = result
                items.append(Item(path, index, info=info, row=len(rows)))
                rows.append(pixels)
                if len(rows) == batch_size:
                    return flush()
            return True

        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="pixelsift-decode") as pool:
                window: deque[tuple[int, str, Future[Any] | ImageError]] = deque()
                for index, source in enumerate(sources):
                    if stop.is_set():
                        return
                    if isinstance(source, ImageError):
                        window.append((index, source.path, source))
                    else:
                        path = str(source)
                        window.append((index, path, pool.submit(_decode_one, decode, path)))
                    while len(window) > batch_size + workers:
                        if not settle(*window.popleft()):
                            return
                while window:
                    if not settle(*window.popleft()):
                        return
                if items and not flush():
                    return
            put(_DONE)
        except BaseException as exc:  # re-raised in the consumer's thread
            put(_ProducerFailed(exc))

    thread = threading.Thread(target=produce, name="pixelsift-batches", daemon=True)
    thread.start()
    try:
        while True:
            obj = handoff.get()
            if obj is _DONE:
                return
            if isinstance(obj, _ProducerFailed):
                raise obj.exc
            yield obj
    finally:
        stop.set()
        thread.join(timeout=5)
