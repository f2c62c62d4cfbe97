"""`RunOptions`: how a network runs (device, precision, engine, threads, streams, batch size, decode
workers).

One frozen, picklable object, built once by each front door (CLI options, Python keyword arguments,
the web app's config) and passed whole to every task. It holds what was *asked for*; each process
resolves it on its own hardware (`auto` device, threads = the CPUs that process may use), so a worker
that receives it builds the same runner the driver would have built there.

    >>> options = RunOptions(device="cpu", precision="fp32")
    >>> RunOptions.of(options, threads=2).threads
    2
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypedDict

from pixelsift.config import (
    ENGINES,
    MAX_BATCH_SIZE,
    PRECISIONS,
    THREAD_LIMIT_REASON,
    check_count,
    get_settings,
    thread_limit,
)
from pixelsift.errors import UsageError


class RunKwargs(TypedDict, total=False):
    """The keyword arguments of the Python API that become a `RunOptions` (see `RunOptions.of`)."""

    device: str | None
    precision: str | None
    engine: str | None
    threads: int | None
    streams: int | None
    batch_size: int | None
    workers: int | None


@dataclass(frozen=True)
class RunOptions:
    """How to run a network. `None` means "the default here": `PIXELSIFT_DEVICE` / `PIXELSIFT_PRECISION`
    / `PIXELSIFT_ENGINE` / `PIXELSIFT_THREADS` when set, else auto / auto / auto (the engine measured
    fastest for the model on this machine, see `runtime/tuning.py`) / the CPUs this process may use;
    `streams` batches computed at once (on a CPU: measured with the engine, else one per CPU up to 8;
    `threads` are shared among them); the batch size the runner prefers on its device; `workers`
    decode threads (default on a CPU: none, each stream decodes its own batches; on a GPU: one per CPU).
    """

    device: str | None = None
    precision: str | None = None
    engine: str | None = None
    threads: int | None = None
    streams: int | None = None
    batch_size: int | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.engine is not None and self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; use one of {', '.join(ENGINES)}")
        if self.precision is not None and self.precision.lower() not in PRECISIONS:
            raise UsageError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        for name, low in (("threads", 1), ("streams", 1), ("workers", 0)):
            value = getattr(self, name)
            if value is not None:  # the CPUs are looked up only for a count that was given
                check_count(f"--{name}", value, low, thread_limit(), THREAD_LIMIT_REASON)
        if self.batch_size is not None:
            check_count("--batch-size", self.batch_size, 1, MAX_BATCH_SIZE)

    @classmethod
    def of(cls, options: RunOptions | None = None, **kwargs: object) -> RunOptions:
        """`options` with every keyword that is not None applied on top (the Python API's front door).

        >>> RunOptions.of(None, device="cpu", threads=None).device
        'cpu'
        """
        base = options or cls()
        changes = {k: v for k, v in kwargs.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown run option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(base, **changes) if changes else base  # type: ignore[arg-type]

    @property
    def engine_name(self) -> str:
        """The engine asked for, `PIXELSIFT_ENGINE` standing in for None."""
        return self.engine or get_settings().engine

    def runner_key(self) -> tuple[str | None, str | None, int | None, int | None, str]:
        """What decides the runner a model gets (batch size and decode workers do not)."""
        return (self.device, self.precision, self.threads, self.streams, self.engine_name)
