"""The one place a network becomes a runner: `create_runner(spec, network, run_options)` picks the engine,
for classifiers and for the detectors that are plain convolutional networks (the offline SSD).

`--engine auto` (the default) reads the choice measured for this model on this machine, or measures it
now (`tuning.py`; once per model and machine, up to a minute, said on stderr); an explicit engine runs
as asked. Every runner has the same interface (uint8 or float NCHW batch in, float32 numpy outputs)
and carries its thread plan (`streams`, `threads`, `workers`) for `ImageModel.iter_outputs`.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any

import torch
from torch import nn

from pixelsift.errors import PixelsiftError, UsageError, short_reason
from pixelsift.models.records import DetectorSpec, ModelSpec, preprocessing_of
from pixelsift.runtime import tuning
from pixelsift.runtime.device import (
    choose_precision,
    default_threads,
    detect_cpu_features,
    plan_threads,
    resolve_device,
)
from pixelsift.runtime.onnx_runner import (
    OnnxRunner,
    ensure_int8,
    ensure_onnx,
    int8_cache_path,
    onnx_cache_path,
)
from pixelsift.runtime.openvino_runner import OpenVinoRunner
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.runner import Runner
from pixelsift.runtime.torch_runner import ModelRunner

log = logging.getLogger("pixelsift")


def build_runner(
    spec: ModelSpec,
    network: nn.Module,
    run_options: RunOptions,
    candidate: tuning.Candidate,
    threads: int,
    calibration: Any = None,
    streams: int = 1,
    workers: int = 0,
) -> Runner:
    """A runner for one candidate with `threads` compute threads per stream, called from `streams`
    threads at once (torch and ONNX Runtime run each call in its caller's thread; OpenVINO is told),
    fed by `workers` decode threads."""
    options = dataclasses.replace(run_options, engine=candidate.engine, precision=candidate.precision)
    plan = (threads, streams, workers)
    if candidate.engine == "torch":
        return ModelRunner(
            network,
            options,
            preprocessing=preprocessing_of(spec),
            threads=threads,
            streams=streams,
            workers=workers,
        )
    try:
        return _exported_runner(spec, network, options, candidate, calibration, plan)
    except PixelsiftError:
        raise
    except Exception as exc:  # a damaged cached export (a crash or a full disk while it was written)
        cached = [p for p in (onnx_cache_path(spec), int8_cache_path(spec)) if p.is_file()]
        if not cached:
            raise
        log.warning(
            "the cached export of %s could not be loaded (%s); exporting it again",
            spec.name,
            short_reason(exc),
        )
        for path in cached:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".json").unlink(missing_ok=True)
        return _exported_runner(spec, network, options, candidate, calibration, plan)


def _exported_runner(
    spec: ModelSpec,
    network: nn.Module,
    options: RunOptions,
    candidate: tuning.Candidate,
    calibration: Any,
    plan: tuple[int, int, int],
) -> Runner:
    threads, streams, workers = plan
    if candidate.engine == "onnxruntime":
        if candidate.precision == "int8":
            if calibration is None:
                calibration = tuning.check_pixels(preprocessing_of(spec))
            path = ensure_int8(spec, network, calibration)
        else:
            path = ensure_onnx(spec, network)
        return OnnxRunner(
            path,
            options,
            preprocessing_of(spec),
            precision=candidate.precision,
            threads=threads,
            streams=streams,
            workers=workers,
        )
    if candidate.engine == "openvino":
        return OpenVinoRunner(
            ensure_onnx(spec, network),
            options,
            precision=candidate.precision,
            threads=threads,
            streams=streams,
            workers=workers,
            preprocessing=preprocessing_of(spec),
        )
    raise UsageError(f"unknown engine {candidate.engine!r}")


def explicit_candidate(engine: str, precision: str | None) -> tuning.Candidate:
    """The candidate an explicit `--engine` (and `--precision`) asks for."""
    wanted = (precision or "auto").lower()
    if engine == "torch":
        return tuning.Candidate("torch", wanted)  # `auto` precision is resolved by the runner
    if wanted == "auto":
        wanted = "fp32"
    allowed = {"onnxruntime": ("fp32", "int8"), "openvino": ("fp32", "bf16")}[engine]
    if wanted not in allowed:
        raise UsageError(f"the {engine} engine runs {' or '.join(allowed)}: use --precision {allowed[0]}")
    return tuning.Candidate(engine, wanted)


def auto_tuning(
    spec: ModelSpec,
    network: nn.Module,
    run_options: RunOptions,
    force: bool = False,
) -> tuning.Tuning:
    """What was measured for this model here: from the cache, else measured now (for both purposes at
    once) and remembered."""
    device = resolve_device(run_options.device)
    cpus = run_options.threads or default_threads()
    key = tuning.tuning_key(spec, str(device), cpus, run_options.precision)
    if not force:
        found = tuning.cached_tuning(key)
        if found is not None:
            return found
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    # a classifier is measured for both its purposes at once; a detector for detection, by its boxes
    purposes: tuple[str, ...] = tuning.PURPOSES
    agreement = tuning.TOP1
    if isinstance(spec, DetectorSpec) and spec.detections is not None:
        purposes, agreement = ("detect",), tuning.detection_agreement(spec.detections)
    options = tuning.candidates(
        device.type, detect_cpu_features(), purposes[0], run_options.precision, cuda_bf16=cuda_bf16
    )
    if not options:
        raise UsageError(f"no engine runs precision {run_options.precision} here; use --precision auto")
    print(
        f"pixelsift: measuring {len(options)} way{'s' * (len(options) != 1)} to run {spec.name} on this "
        "machine (once per model and machine, up to a minute, longer on a busy machine; remembered for "
        "later runs; --engine torch skips it)",
        file=sys.stderr,
    )
    start = time.perf_counter()
    preprocessing = preprocessing_of(spec)
    check = tuning.check_pixels(preprocessing)

    def build(candidate: tuning.Candidate, threads: int, streams: int) -> Runner:
        return build_runner(spec, network, run_options, candidate, threads, check, streams)

    decode = tuning.decode_cost(preprocessing) if device.type == "cpu" else 0.0
    measured = tuning.measure(
        options, build, check, cpus, purposes=purposes, decode_seconds=decode, agreement=agreement
    )
    tuned = tuning.Tuning(measured, round(time.perf_counter() - start, 2), measured_now=True)
    tuning.remember(key, tuned)
    best = tuned.choice(purposes[0])
    print(
        f"pixelsift: {spec.name} runs fastest here on {best.engine} {best.precision}, {best.streams} "
        f"stream(s) ({best.images_per_s or 0:.0f} images/s model only; measured in {tuned.seconds:.1f} s; "
        f"`pixelsift models tune {spec.name}` shows the table)",
        file=sys.stderr,
    )
    return tuned


def check_purpose(run_options: RunOptions, purpose: str) -> None:
    """int8 was asked for features or detection: a usage error (it is for classification only)."""
    if purpose != "classify" and (run_options.precision or "").lower() == "int8":
        what = "detection boxes" if purpose == "detect" else "features (embed, train, index)"
        raise UsageError(
            f"int8 is for classification only: {what} change too much in int8; "
            "use --precision fp32, bf16 or auto"
        )


def planned_candidate(spec: ModelSpec, run_options: RunOptions, purpose: str) -> tuple[str, str] | None:
    """(engine, precision) a model would run with, worked out without loading its network, or None
    when `auto` has not measured this model here yet (the feature cache keys on it)."""
    check_purpose(run_options, purpose)
    device = resolve_device(run_options.device)
    engine = run_options.engine_name
    if engine == "auto":
        cpus = run_options.threads or default_threads()
        tuned = tuning.cached_tuning(tuning.tuning_key(spec, str(device), cpus, run_options.precision))
        if tuned is None:
            return None
        chosen = tuned.choice(purpose)
        return chosen.engine, chosen.precision
    candidate = explicit_candidate(engine, run_options.precision)
    if candidate.engine == "torch":
        return "torch", choose_precision(run_options.precision, device)[0]
    return candidate.engine, candidate.precision


def create_runner(
    spec: ModelSpec, network: nn.Module, run_options: RunOptions, purpose: str = "features"
) -> Runner:
    """The runner `run_options` ask for: every task that runs a classification network gets it here.

    `purpose`: "classify" lets `auto` choose int8; "features" (embeddings, transfer learning, the photo
    index) keeps fp32 / bf16; "detect" is a detector's (its record has `preprocessing`: the SSD)."""
    device = resolve_device(run_options.device)
    engine = run_options.engine_name
    cpus = run_options.threads or default_threads()
    check_purpose(run_options, purpose)
    streams: int | None = run_options.streams
    if engine == "auto":
        tuned = auto_tuning(spec, network, run_options)
        choice = tuned.choice(purpose)
        candidate, streams = choice.candidate, streams or choice.streams
        log.info(
            "engine auto for %s (%s): %s, %d stream(s), %.0f images/s model only%s; measured:",
            spec.name,
            purpose,
            candidate.label,
            choice.streams,
            choice.images_per_s or 0.0,
            "" if tuned.measured_now else " (remembered)",
        )
        for line in tuned.table(purpose).splitlines():  # one log line each: log lines escape newlines
            log.info("  %s", line)
    else:
        candidate = explicit_candidate(engine, run_options.precision)
    plan = plan_threads(device, cpus, streams, run_options.workers)
    try:
        runner = build_runner(
            spec, network, run_options, candidate, plan.threads, streams=plan.streams, workers=plan.workers
        )
    except Exception as exc:
        if engine != "auto":
            raise
        # a cached choice that no longer builds (an uninstalled runtime): torch fp32 always does
        log.warning("%s no longer runs %s (%s); using torch", spec.name, candidate.label, exc)
        runner = build_runner(
            spec,
            network,
            run_options,
            tuning.REFERENCE,
            plan.threads,
            streams=plan.streams,
            workers=plan.workers,
        )
    log.info("threads: %s", plan.describe())
    return runner
