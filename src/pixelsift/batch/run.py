"""Run a batch job: inputs -> shards -> an engine -> Parquet shards in OUT_DIR, and a summary.

`engine="local"` runs the shards in this process; `engine="ray"` runs the same `Worker` as a Ray Data
actor pool (`pixelsift[ray]`), on this machine or a running cluster (`address`). Only the driver
writes files, shard by shard, so the output is the same whichever engine ran it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.batch.files import stat
from pixelsift.batch.inputs import batch_inputs
from pixelsift.batch.job import BatchJob, Worker, error_row
from pixelsift.batch.output import (
    JOB_FILE,
    SHARD_GLOB,
    finished_inputs,
    read_job_file,
    rows_to_table,
    write_job_file,
    write_shard,
)
from pixelsift.config import thread_limit
from pixelsift.core.outputs import writable_folder
from pixelsift.core.progress import progress_bar
from pixelsift.core.sequences import chunks
from pixelsift.errors import PixelsiftError, UsageError, short_reason
from pixelsift.models.registry import DEFAULT_TOP_K, get_model_spec
from pixelsift.runtime.options import RunOptions
from pixelsift.version import __version__

log = logging.getLogger("pixelsift")

ENGINES = ("local", "ray")
SHARD_SIZE = 1000  # inputs per Parquet file


@dataclass
class BatchSummary:
    """What a batch run did."""

    out: Path
    task: str
    engine: str
    inputs: int = 0
    processed: int = 0  # run this time
    skipped: int = 0  # already in OUT_DIR (resume)
    failed: int = 0  # rows with an error, of those processed
    shards: int = 0
    shards_written: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0  # engine start and model load: until the first result arrived
    interrupted: bool = False
    ran: dict[str, str | None] | None = None  # engine, precision, device the model ran on (all workers)

    @property
    def throughput(self) -> float:
        """Inputs per second over the whole run, start-up included."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "task": self.task,
            "engine": self.engine,
            "inputs": self.inputs,
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": self.failed,
            "shards": self.shards,
            "shards_written": self.shards_written,
            "seconds": round(self.seconds, 3),
            "startup_seconds": round(self.startup_seconds, 3),
            "throughput": round(self.throughput, 2),
            "interrupted": self.interrupted,
            "ran": self.ran,
        }

    def line(self) -> str:
        done = f"{self.processed} processed, {self.skipped} already done, {self.failed} failed"
        rate = f"{self.throughput:.1f} images/s, of which {self.startup_seconds:.1f} s start-up"
        return f"{self.task}: {self.inputs} inputs, {done} in {self.seconds:.1f} s ({rate}) -> {self.out}"


@dataclass
class EngineOptions:
    """Where and how wide the job runs."""

    engine: str = "local"
    address: str | None = None  # Ray: a running cluster ("auto", "ray://host:10001"); None starts one
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    batch_size: int = 32  # inputs per worker call
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise UsageError("--cpus-per-worker must be above 0 and --gpus-per-worker at least 0")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")


@dataclass
class _Plan:
    shards: list[list[str]]
    todo: list[int]
    skipped: int
    shard_of: dict[str, int] = field(default_factory=dict)


def _plan(paths: list[str], out: Path, shard_size: int, resume: bool) -> _Plan:
    shards = [list(c) for c in chunks(paths, shard_size)]
    todo, skipped = [], 0
    for index, shard in enumerate(shards):
        done = finished_inputs(out, index) if resume else None
        if done is not None and set(done) == set(shard) and all(done[p] == stat(p) for p in shard):
            skipped += len(shard)  # every input of the shard is there, unchanged
        else:
            todo.append(index)
    return _Plan(shards, todo, skipped)


def _prepare_out(out: Path, job: BatchJob, resume: bool, shards: int) -> None:
    writable_folder(out, "-o")
    earlier = read_job_file(out)
    existing = sorted(out.glob(SHARD_GLOB))
    if not resume and (earlier is not None or existing):
        raise UsageError(
            f"{out} holds the output of an earlier job; --resume continues it, or pick another -o folder"
        )
    if earlier is not None:
        same = earlier.get("task") == job.task and earlier.get("model") == job.model_name()
        if not same:
            raise UsageError(
                f"{out} holds a {earlier.get('task')} job of {earlier.get('model')}; resume it with the same "
                "task and model, or pick another -o folder"
            )
    for stale in existing:  # shards past the end of this input list belong to no shard of it
        if int(stale.stem.split("-")[1]) >= shards:
            stale.unlink()


def _job_record(
    job: BatchJob, engine: EngineOptions, summary: BatchSummary, shard_size: int
) -> dict[str, Any]:
    name = job.model_name()
    spec = get_model_spec(name)
    weights = spec.weights
    precision = job.run_options.precision or "auto"
    return {
        "task": job.task,
        "model": name,
        "weights_sha256": getattr(weights, "sha256", None),
        "weights_file": getattr(weights, "filename", None),
        "precision": precision,
        "engine": engine.engine,
        # what ran: `precision` above is what was asked (auto); a Ray job's workers choose per node, and
        # where they chose differently the values seen are listed
        "ran": summary.ran,
        "pixelsift_version": __version__,
        "options": {**job.describe(), "shard_size": shard_size, "batch_size": engine.batch_size},
        "counts": {
            "inputs": summary.inputs,
            "processed": summary.processed,
            "skipped": summary.skipped,
            "failed": summary.failed,
            "shards": summary.shards,
        },
        "finished": not summary.interrupted,
    }


def run(
    task: str,
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    run_options: RunOptions | None = None,
    *,
    engine: str = "local",
    model: str | None = None,
    top_k: int = DEFAULT_TOP_K,
    conf: float = 0.25,
    normalize: str = "l2",
    resume: bool = False,
    shard_size: int = SHARD_SIZE,
    batch_size: int = 32,
    workers: int = 1,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    address: str | None = None,
    progress: bool | None = False,
    verbose: bool = False,
) -> BatchSummary:
    """Classify, embed or detect every input (folders, globs, manifest files) into Parquet shards.

    >>> s = pixelsift.batch.run("embed", "photos/", "out/")          # doctest: +SKIP
    >>> s.processed, s.throughput                                     # doctest: +SKIP
    >>> pixelsift.batch.read("out/").head()                           # doctest: +SKIP
    """
    run_options = run_options or RunOptions()
    if engine == "ray" and run_options.threads is None:
        # a Ray worker may use the CPUs it reserved, not every CPU of its node (its affinity is the node's);
        # within the thread bound of this machine, which is all it can check (--cpus-per-worker itself is
        # checked against the cluster's nodes when the job starts)
        threads = min(max(1, int(cpus_per_worker)), thread_limit())
        run_options = RunOptions.of(run_options, threads=threads)
    job = BatchJob(task, model, top_k, conf, normalize, run_options)
    options = EngineOptions(engine, address, workers, cpus_per_worker, gpus_per_worker, batch_size, verbose)
    if shard_size < 1:
        raise UsageError("--shard-size must be at least 1")
    target = Path(out).expanduser()
    paths = batch_inputs([inputs] if isinstance(inputs, str | os.PathLike) else inputs)
    plan = _plan(paths, target, shard_size, resume)
    if plan.todo:  # an unknown model or missing weights: one clear error now, not one per worker
        job.check()
    created = not target.exists()
    _prepare_out(target, job, resume, len(plan.shards))
    summary = BatchSummary(target, task, engine, len(paths), skipped=plan.skipped, shards=len(plan.shards))
    started = time.perf_counter()
    write_job_file(target, {**_job_record(job, options, summary, shard_size), "finished": False})
    runner = _run_ray if engine == "ray" else _run_local
    try:
        runner(_Run(job, options, plan, target, summary, started, progress))
    except KeyboardInterrupt:
        summary.interrupted = True
    except BaseException:
        _discard_unstarted(target, created)
        raise
    summary.seconds = time.perf_counter() - started
    write_job_file(target, _job_record(job, options, summary, shard_size))
    if summary.interrupted:
        raise KeyboardInterrupt(summary.line())
    return summary


def _discard_unstarted(out: Path, created: bool) -> None:
    """A job that failed (a model that would not load, a worker's error) before it wrote any shard
    leaves nothing behind: no `_job.json`, and no folder when it made the folder. Finished shards stay,
    with `_job.json` saying the job is unfinished: `--resume` continues it."""
    if any(out.glob(SHARD_GLOB)):
        return
    with contextlib.suppress(OSError):
        (out / JOB_FILE).unlink()
    if created:
        with contextlib.suppress(OSError):
            out.rmdir()  # only when empty: nothing of anybody else's is removed


@dataclass
class _Run:
    """One run's state, shared by the engines."""

    job: BatchJob
    options: EngineOptions
    plan: _Plan
    target: Path
    summary: BatchSummary
    started: float
    progress: bool | None

    def started_up(self) -> None:
        self.summary.startup_seconds = time.perf_counter() - self.started

    def write(self, index: int, rows: Sequence[dict[str, Any]], vectors: np.ndarray | None, dim: int) -> None:
        write_shard(self.target, index, rows_to_table(self.job.task, rows, vectors, dim))
        self.summary.processed += len(rows)
        self.summary.failed += sum(r.get("error") is not None for r in rows)
        self.summary.shards_written += 1


def _run_local(run: _Run) -> None:
    plan = run.plan
    if not plan.todo:
        return
    worker = Worker(run.job)
    run.summary.ran = worker.ran()
    run.started_up()
    total = sum(len(plan.shards[i]) for i in plan.todo)
    with progress_bar(total=total, desc=run.job.task, enabled=run.progress) as bar:
        for index in plan.todo:
            rows: list[dict[str, Any]] = []
            parts: list[np.ndarray] = []
            for chunk in chunks(plan.shards[index], run.options.batch_size):
                chunk_rows, vectors = worker.process(list(chunk))
                rows += chunk_rows
                parts.append(vectors)
                bar.update(len(chunk))
            run.write(index, rows, np.concatenate(parts), worker.dim)


WORKER_RETRIES = 2


def check_resources(options: EngineOptions, nodes: list[dict[str, Any]]) -> None:
    """Refuse, before the job starts, a request the cluster can never satisfy (Ray would wait for it in
    silence forever): one worker larger than every node, or more workers than the cluster holds."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    for key, per_worker, option in (
        ("CPU", options.cpus_per_worker, "--cpus-per-worker"),
        ("GPU", options.gpus_per_worker, "--gpus-per-worker"),
    ):
        if not per_worker:
            continue
        sizes = [float(r.get(key, 0.0)) for r in alive]
        largest, total = max(sizes, default=0.0), sum(sizes)
        has = f"the cluster has {total:g} {key}s ({len(alive)} node(s), at most {largest:g} on one)"
        if per_worker > largest:
            raise UsageError(f"{option} {per_worker:g}: no node can give one worker that; {has}")
        if per_worker * options.workers > total:
            fits = int(total // per_worker)
            raise UsageError(
                f"--workers {options.workers} x {option} {per_worker:g} is more than {has}; "
                f"use --workers {fits} or fewer"
            )


def _bound_worker(job: BatchJob) -> type:
    """A `Worker` class that carries the job itself: Ray rebuilds it in each actor (and again when a
    dead actor is restarted) without constructor arguments in the object store."""

    class BoundWorker(Worker):
        def __init__(self) -> None:
            super().__init__(job)

    return BoundWorker


def _ray_batches(
    job: BatchJob, options: EngineOptions, paths: list[str]
) -> tuple[Iterator[dict[str, np.ndarray]], Any]:
    """(the Ray Data output batches, the dataset) for `paths`; starts or joins a cluster."""
    from pixelsift.core.optional import optional_import

    ray = optional_import("ray", "ray", "ray", "The Ray engine (--engine ray)")
    quiet = logging.INFO if options.verbose else logging.ERROR
    if not ray.is_initialized():
        if options.address:
            try:
                ray.init(address=options.address, log_to_driver=options.verbose, logging_level=quiet)
            except (ValueError, ConnectionError, RuntimeError, TimeoutError) as exc:
                raise UsageError(
                    f"--address {options.address}: no Ray cluster to join there ({short_reason(exc)}); use "
                    "`auto` on a node of a running cluster, or ray://HEAD:10001 (needs ray[client])"
                ) from None
        else:  # a local cluster with this machine's CPUs and GPUs
            ray.init(include_dashboard=False, log_to_driver=options.verbose, logging_level=quiet)
    check_resources(options, ray.nodes())
    import ray.data  # imported with ray

    logging.getLogger("ray.data").setLevel(quiet)

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # shards complete one after another
    context.enable_progress_bars = options.verbose
    dataset = ray.data.from_items([{"path": os.fsencode(p)} for p in paths])  # see Worker.__call__
    mapped = dataset.map_batches(
        _bound_worker(job),
        batch_size=options.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options.workers),
        num_cpus=options.cpus_per_worker,
        num_gpus=options.gpus_per_worker or None,
        # a worker process that dies (out of memory, a signal) is restarted and its batch retried a few
        # times, then the job stops with the reason; Ray's default retries forever
        max_restarts=WORKER_RETRIES,
        max_task_retries=WORKER_RETRIES,
    )
    return mapped.iter_batches(batch_size=None, batch_format="numpy"), mapped


def _root_cause(exc: BaseException) -> BaseException:
    """The exception a Ray worker raised, from the Ray errors that wrap it on the driver."""
    seen = exc
    for _ in range(10):
        inner = getattr(seen, "cause", None) or seen.__cause__
        if inner is None or inner is seen:
            break
        seen = inner
    return seen


MAX_ISOLATED = 10  # inputs a Ray job turns into error rows for killing their worker before it gives up


def _run_ray(run: _Run) -> None:
    """Run the plan on Ray. A worker that dies more than WORKER_RETRIES times (out of memory, a signal)
    stops Ray's run. The input that killed it is then found among those not delivered yet by halving
    them (a run of the half that holds it stops again), checked alone, and written as an error row; the
    rest goes on. After MAX_ISOLATED such inputs, or when no input kills its worker alone (the trouble
    was elsewhere), the job stops with one line; finished shards are kept for --resume."""
    plan = run.plan
    if not plan.todo:
        return
    state = _RayState(run)
    todo = [p for i in plan.todo for p in plan.shards[i]]
    isolated = 0
    while todo:
        try:
            _collect_ray(state, todo, run.options)
            return
        except Exception as exc:
            cause = _stopped(exc)
        suspects = state.undelivered(todo)
        killer = _find_killer(state, suspects, run.options) if suspects and isolated < MAX_ISOLATED else None
        if killer is None:
            raise _job_stopped(cause, isolated)
        path, reason = killer
        state.deliver(path, error_row(path, _died(reason)), None)
        isolated += 1
        log.warning("pixelsift: %s: %s", path, _died(reason))
        todo = state.undelivered(suspects)


def _find_killer(
    state: _RayState, suspects: list[str], options: EngineOptions
) -> tuple[str, BaseException] | None:
    """The input among `suspects` that kills its worker when it runs alone, with the reason; None when
    none does. Halves the suspects: a half that goes through is delivered, one that stops holds it."""
    while len(suspects) > 1:
        half = suspects[: len(suspects) // 2]
        try:
            _collect_ray(state, half, options)
        except Exception as exc:
            _stopped(exc)
            suspects = state.undelivered(half)
            continue
        suspects = state.undelivered(suspects)
    if not suspects:
        return None
    try:
        _collect_ray(state, suspects, options)
        return None  # it went through alone
    except Exception as exc:
        return suspects[0], _stopped(exc)


def _stopped(exc: BaseException) -> BaseException:
    """The reason a Ray run stopped; a PixelsiftError (a model that will not load, a bad option) is
    raised as it is: it would stop every run the same way."""
    cause = _root_cause(exc)
    if isinstance(cause, PixelsiftError):
        raise cause from None
    return cause


def _died(cause: BaseException) -> str:
    return (
        f"the worker processing it died, {WORKER_RETRIES + 1} times ({type(cause).__name__}: "
        f"{short_reason(cause)}); out of memory or a crash in a decoder or the model"
    )


def _job_stopped(cause: BaseException, isolated: int) -> PixelsiftError:
    made = f" after {isolated} input(s) that killed their worker became error rows" if isolated else ""
    return PixelsiftError(
        f"the Ray job stopped{made}: {type(cause).__name__}: {short_reason(cause)}. Finished shards are "
        "kept; run again with --resume to do the rest (fewer --workers or a larger --cpus-per-worker if a "
        "worker ran out of memory)"
    )


class _RayState:
    """What a Ray job has delivered so far: rows of shards not complete yet, and the shards written."""

    def __init__(self, run: _Run):
        self.run = run
        self.shard_of = {p: i for i in run.plan.todo for p in run.plan.shards[i]}
        self.pending: dict[int, dict[str, tuple[dict[str, Any], np.ndarray | None]]] = {
            i: {} for i in run.plan.todo
        }
        self.dim = 0

    def delivered(self, path: str) -> bool:
        index = self.shard_of[path]
        return index not in self.pending or path in self.pending[index]

    def undelivered(self, paths: list[str]) -> list[str]:
        return [p for p in paths if not self.delivered(p)]

    def deliver(self, path: str, row: dict[str, Any], vector: np.ndarray | None) -> bool:
        """Keep a row; write its shard when it is complete. False when the row was there already (a
        retried task may deliver a row twice)."""
        index = self.shard_of[path]
        new = not self.delivered(path)
        if index not in self.pending:
            return False
        if vector is not None:
            self.dim = int(np.asarray(vector).shape[0])
        self.pending[index][path] = (row, vector)
        shard = self.run.plan.shards[index]
        if len(self.pending[index]) == len(shard):
            done = self.pending.pop(index)
            rows = [done[p][0] for p in shard]
            matrix = None
            if self.run.job.task == "embed":
                dim = self.dim or self._model_dim()
                matrix = np.stack(
                    [
                        np.zeros(dim, np.float32) if done[p][1] is None else np.asarray(done[p][1])
                        for p in shard
                    ]
                )
            self.run.write(index, rows, matrix, self.dim or self._model_dim())
        return new

    def _model_dim(self) -> int:
        """The embedding width from the model's record (a shard of error rows only, before any vector)."""
        return int(get_model_spec(self.run.job.model_name()).embed_dim or 0)


def _collect_ray(state: _RayState, paths: list[str], options: EngineOptions) -> None:
    import json

    run = state.run
    job = run.job
    batches, dataset = _ray_batches(job, options, paths)
    first = True
    ran: set[str] = set()
    with progress_bar(total=len(paths), desc=f"{job.task} (ray)", enabled=run.progress) as bar:
        for batch in batches:
            if first:
                run.started_up()
                first = False
            ran.update(str(r) for r in batch.get("ran", ()))
            run.summary.ran = Worker.merge_ran(json.loads(r) for r in sorted(ran))
            vectors = batch.get("vector")
            for i, (raw, text) in enumerate(zip(batch["path"], batch["row"], strict=True)):
                vector = None if vectors is None else np.asarray(vectors[i])
                if state.deliver(os.fsdecode(raw), json.loads(str(text)), vector):
                    bar.update(1)
    if run.options.verbose:
        print(dataset.stats())
