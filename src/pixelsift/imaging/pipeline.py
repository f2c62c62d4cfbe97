"""The input pipeline: decode and preprocess images in worker threads while the model runs.

`iter_batches` reads paths lazily, decodes them in a thread pool (Pillow releases the GIL while it
decodes and resizes), and hands out batches in input order through a bounded queue, so memory stays
flat however large the folder and the model never waits for a decode it could have overlapped.
Failed inputs travel in the same order as `Item`s with an `error`, so callers report them in place.

`iter_computed` adds the model: `streams` lanes each take the next `batch_size` inputs, decode them
and run `compute` on them, so on a CPU every core alternates between decoding and computing and no
core waits for another (with 2 lanes of 1 compute thread each on 2 cores, efficientnet_lite0 runs
1.5x faster end to end than 1 lane of 2 threads fed by decode threads, which fight the compute threads
for the same cores). With `workers > 0` decoding runs in that many threads instead and the lanes only
compute (a GPU, whose compute does not take a CPU core). Results come out in input order either way.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.config import available_cpus
from pixelsift.errors import ImageError

Decoder = Callable[[str], tuple[np.ndarray, Any]]
Compute = Callable[[Any], Any]  # a batch's pixels (`Batch.pixels`) -> what the caller wants back


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
    # (number of ok items, C, H, W): uint8 from Preprocessing.pixels, or float32; a list of arrays when
    # the images have different shapes (detectors that resize each photo themselves)
    pixels: np.ndarray | list[np.ndarray]
    ok_items: list[Item] = field(init=False)

    def __post_init__(self) -> None:
        self.ok_items = [item for item in self.items if item.ok]
        if len(self.ok_items) != len(self.pixels):
            raise ValueError(f"{len(self.ok_items)} decoded items but {len(self.pixels)} rows of pixels")


def stack(rows: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Decoded images as one array, or as the list itself when their shapes differ."""
    if not rows:
        return np.zeros((0, 3, 1, 1), np.float32)
    if all(r.shape == rows[0].shape for r in rows):
        return np.stack(rows)
    return rows


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
            pixels = stack(rows)
            ok = put(Batch(items, pixels))
            items, rows = [], []
            return ok

        def settle(index: int, path: str, pending: Future[Any] | ImageError) -> bool:
            result = pending if isinstance(pending, ImageError) else pending.result()
            _add(items, rows, index, path, result)
            return flush() if len(rows) == batch_size else True

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


def _add(
    items: list[Item],
    rows: list[np.ndarray],
    index: int,
    path: str,
    result: tuple[np.ndarray, Any] | ImageError,
) -> None:
    """One decoded input into a batch being built: its pixels as the next row, or its error in place."""
    if isinstance(result, ImageError):
        items.append(Item(path, index, error=result.reason))
    else:
        pixels, info = result
        items.append(Item(path, index, info=info, row=len(rows)))
        rows.append(pixels)


def _decode_chunk(chunk: list[tuple[int, str | Path | ImageError]], decode: Decoder) -> Batch:
    items: list[Item] = []
    rows: list[np.ndarray] = []
    for index, source in chunk:
        if isinstance(source, ImageError):
            items.append(Item(source.path, index, error=source.reason))
            continue
        path = str(source)
        _add(items, rows, index, path, _decode_one(decode, path))
    return Batch(items, stack(rows))


def iter_computed(
    sources: Iterable[str | Path | ImageError],
    decode: Decoder,
    compute: Compute,
    batch_size: int = 32,
    streams: int = 1,
    workers: int = 0,
    also: Callable[[Batch], None] | None = None,
) -> Iterator[tuple[Batch, Any]]:
    """(batch, compute(batch.pixels)) for consecutive batches of the inputs, in input order; `compute`
    is not called for a batch with no decodable input (its result is None). `also(batch)` runs right
    after `compute`, in the same lane (more work on the same decoded batch, e.g. other networks that
    leave their results on the items' `info`).

    `streams` batches are decoded and computed at once (`compute` must be safe to call from several
    threads: torch and ONNX Runtime inference are). `workers == 0`: each lane decodes its own batch;
    `workers > 0`: `iter_batches` decodes with that many threads and the lanes compute. At most
    `2 * streams` batches are in flight, so memory stays flat however long the input.
    """
    if batch_size < 1 or streams < 1:
        raise ValueError("batch_size and streams must be at least 1")

    def run(batch: Batch) -> Any:
        if not len(batch.pixels):
            return None
        result = compute(batch.pixels)
        if also is not None:
            also(batch)
        return result

    if workers > 0:
        yield from _computed_from_pool(sources, decode, run, batch_size, streams, workers)
        return
    if streams == 1:  # one lane: no thread needed
        numbered = enumerate(sources)
        while chunk := list(islice(numbered, batch_size)):
            batch = _decode_chunk(chunk, decode)
            yield batch, run(batch)
        return
    yield from _computed_in_lanes(sources, decode, run, batch_size, streams)


def _computed_from_pool(
    sources: Iterable[str | Path | ImageError],
    decode: Decoder,
    run: Callable[[Batch], Any],
    batch_size: int,
    streams: int,
    workers: int,
) -> Iterator[tuple[Batch, Any]]:
    window: deque[tuple[Batch, Future[Any]]] = deque()
    with ThreadPoolExecutor(streams, thread_name_prefix="pixelsift-compute") as pool:
        for batch in iter_batches(sources, decode, batch_size=batch_size, workers=workers):
            window.append((batch, pool.submit(run, batch)))
            while len(window) > streams:
                done, pending = window.popleft()
                yield done, pending.result()
        while window:
            done, pending = window.popleft()
            yield done, pending.result()


def _computed_in_lanes(
    sources: Iterable[str | Path | ImageError],
    decode: Decoder,
    run: Callable[[Batch], Any],
    batch_size: int,
    streams: int,
) -> Iterator[tuple[Batch, Any]]:
    numbered = enumerate(sources)
    take = threading.Lock()
    slots = threading.Semaphore(2 * streams)  # batches taken but not yet handed to the caller
    finished: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    sequence = 0

    def lane() -> None:
        nonlocal sequence
        try:
            while not stop.is_set():
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                with take:
                    chunk = list(islice(numbered, batch_size))
                    seq, sequence = sequence, sequence + 1
                if not chunk:
                    finished.put((seq, None, None))
                    return
                batch = _decode_chunk(chunk, decode)
                result = run(batch)
                finished.put((seq, batch, result))
        except BaseException as exc:  # re-raised in the caller's thread
            finished.put((-1, _ProducerFailed(exc), None))

    threads = [threading.Thread(target=lane, name=f"pixelsift-lane-{i}", daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    waiting: dict[int, tuple[Batch | None, Any]] = {}
    next_seq, ended = 0, 0
    try:
        while True:
            while next_seq in waiting:
                batch, result = waiting.pop(next_seq)
                if batch is None:  # the end of the inputs: no later batch exists
                    return
                next_seq += 1
                slots.release()
                yield batch, result
            seq, batch, result = finished.get()
            if isinstance(batch, _ProducerFailed):
                raise batch.exc
            if batch is None:
                ended += 1
            waiting[seq] = (batch, result)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
