"""`--engine auto`: the engine, precision and thread split measured fastest for a model on this machine.

The first time a model runs here, every candidate that can run (torch fp32; torch bf16 where the CPU
does bf16 natively; ONNX Runtime fp32 and int8; OpenVINO when installed; torch fp16 / bf16 on a GPU)
is timed for about half a second; then, fastest first, candidates run the check photos (`data/check/`:
crops and mirrors of five real photos) until one gives the same top-1 class as torch fp32 on at least
99% of them; that one is timed with each stream count (`device.stream_choices`). The choice is remembered in
`$PIXELSIFT_HOME/tuning/`, under a key of everything that could change it: model, weights sha256,
device, CPU model and flags, CPU count and library versions. A new key measures again.

`pick` and `candidates` are pure (tests pass fake timings and fake CPU flags); `measure` measures.
int8 is a candidate only for classification: features for transfer learning and the photo index stay
fp32 / bf16 (`purpose="features"`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.config import get_settings
from pixelsift.core.arrays import softmax
from pixelsift.core.boxes import box_iou
from pixelsift.core.hashing import remembered_sha256, short_digest
from pixelsift.core.machine import cpu_model, library_versions, write_json
from pixelsift.core.optional import is_installed
from pixelsift.errors import PixelsiftError
from pixelsift.models import weights
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ModelSpec
from pixelsift.runtime.device import CpuFeatures, detect_cpu_features, stream_choices

log = logging.getLogger("pixelsift")

PURPOSES = ("classify", "features")  # a classifier's; a detector is measured for "detect"
MIN_AGREEMENT = 0.99  # top-1 agreement with torch fp32 on the check photos a candidate needs
SECONDS = 0.5  # timing window per measurement
_FORMAT = 1  # bump when what is measured changes, so old choices are measured again


@dataclass(frozen=True)
class Candidate:
    """One way to run a network: engine and precision."""

    engine: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}"


REFERENCE = Candidate("torch", "fp32")


def candidates(
    device_type: str,
    cpu: CpuFeatures,
    purpose: str = "classify",
    precision: str | None = None,
    installed: Callable[[str], bool] = is_installed,
    cuda_bf16: bool = False,
) -> list[Candidate]:
    """What `auto` may choose from, torch fp32 first (the reference). Never a precision the device
    only emulates (bf16 on a CPU without AMX / AVX-512 BF16), never int8 for features, and only the
    precision asked for when one was (`--precision bf16` leaves the bf16 candidates).

    >>> [c.label for c in candidates("cpu", CpuFeatures(avx2=True), installed=lambda m: False)]
    ['torch fp32']
    """
    found: list[Candidate] = [REFERENCE]
    if device_type == "cuda":
        found.append(Candidate("torch", "fp16"))
        if cuda_bf16:
            found.append(Candidate("torch", "bf16"))
    elif device_type == "mps":
        found.append(Candidate("torch", "fp16"))
    else:
        if cpu.native_bf16:
            found.append(Candidate("torch", "bf16"))
        if installed("onnxruntime"):
            found.append(Candidate("onnxruntime", "fp32"))
            if purpose == "classify":
                found.append(Candidate("onnxruntime", "int8"))
        if installed("openvino"):
            found.append(Candidate("openvino", "fp32"))
            if cpu.native_bf16:
                found.append(Candidate("openvino", "bf16"))
    wanted = (precision or "auto").lower()
    if wanted != "auto":
        found = [c for c in found if c.precision == wanted]
    return found


@dataclass
class Measurement:
    """One candidate at one stream count: images/s and top-1 agreement with fp32 (or why it failed)."""

    engine: str
    precision: str
    streams: int
    threads: int
    images_per_s: float | None = None  # the model alone, every stream computing at once
    agreement: float | None = None  # None: not checked (slower than one that agreed)
    error: str | None = None
    end_to_end: float | None = None  # estimated with decoding: streams / (decode + streams / images_per_s)
    needed: float = 0.99  # the agreement a candidate needs (`Agreement.minimum`)

    @property
    def candidate(self) -> Candidate:
        return Candidate(self.engine, self.precision)

    @property
    def score(self) -> float:
        return self.end_to_end or self.images_per_s or 0.0

    @property
    def usable(self) -> bool:
        return (
            self.error is None
            and self.images_per_s is not None
            and self.agreement is not None
            and self.agreement >= self.needed
        )


def allowed(candidate: Candidate, purpose: str) -> bool:
    """int8 changes features more than transfer learning tolerates: classification only."""
    return purpose == "classify" or candidate.precision != "int8"


def pick(measurements: Sequence[Measurement], purpose: str = "classify") -> Measurement:
    """The fastest usable measurement for `purpose`; torch fp32 when nothing else is usable (it is
    the reference, so it needs no check)."""
    usable = [m for m in measurements if m.usable and allowed(m.candidate, purpose)]
    if usable:
        return max(usable, key=lambda m: m.score)
    reference = [m for m in measurements if m.candidate == REFERENCE and m.error is None]
    if reference:
        return max(reference, key=lambda m: m.score)
    # `--precision` ruled the reference out (int8, bf16 asked for): the user chose those numerics
    ran = [
        m
        for m in measurements
        if m.error is None and m.images_per_s is not None and allowed(m.candidate, purpose)
    ]
    if ran:
        return max(ran, key=lambda m: m.score)
    reasons = "; ".join(f"{m.engine} {m.precision}: {m.error}" for m in measurements if m.error) or "none ran"
    raise PixelsiftError(f"no engine could run this model here ({reasons}); try --engine torch")


@dataclass
class Tuning:
    """What was measured for a model here; `choice(purpose)` is what `auto` runs."""

    measurements: list[Measurement] = field(default_factory=list)
    seconds: float = 0.0  # what measuring took
    measured_now: bool = False  # False: read from the cache

    def choice(self, purpose: str = "classify") -> Measurement:
        return pick(self.measurements, purpose)

    def to_dict(self) -> dict[str, Any]:
        return {"measurements": [asdict(m) for m in self.measurements], "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tuning:
        return cls([Measurement(**m) for m in data["measurements"]], float(data.get("seconds", 0.0)))

    def table(self, purpose: str = "classify") -> str:
        chosen = self.choice(purpose)
        what = "boxes same" if purpose == "detect" else "top-1 same"
        columns = ("model img/s", "end to end", what)
        lines = [f"{'engine':<20} {'streams':>7} {'threads':>7} " + " ".join(f"{c:>11}" for c in columns)]
        for m in self.measurements:
            if not allowed(m.candidate, purpose):
                continue
            rate = f"{m.images_per_s:11.1f}" if m.images_per_s is not None else f"{'-':>11}"
            e2e = f"{m.end_to_end:11.1f}" if m.end_to_end is not None else f"{'-':>11}"
            agree = f"{m.agreement:11.1%}" if m.agreement is not None else f"{'-':>11}"
            mark = "  <- chosen" if m is chosen else ""
            note = f"  ({m.error})" if m.error else ""
            if m.error is None and m.agreement is not None and not m.usable and m.candidate != REFERENCE:
                differs = "its boxes differ from fp32's" if purpose == "detect" else "top-1 differs from fp32"
                note = f"  ({differs} on more than {1 - m.needed:.0%} of the check photos)"
            label = f"{m.engine} {m.precision}"
            lines.append(f"{label:<20} {m.streams:>7} {m.threads:>7} {rate} {e2e} {agree}{mark}{note}")
        if any(m.agreement is None and m.error is None for m in self.measurements):
            lines.append(f"({what} -: not checked, slower than a candidate that agreed)")
        return "\n".join(lines)


# -- the cache key --------------------------------------------------------------------------------


def weights_digest(spec: ModelSpec) -> str:
    """The sha256 of the weights file the model loads (the file's own, so a file imported with
    `models add` counts too), hashed once per (path, size, mtime) and remembered beside the choices."""
    if spec.weights is None:
        return "none"
    return remembered_sha256(weights.resolve(spec), tuning_dir() / "digests.json")


def tuning_key(
    spec: ModelSpec,
    device: str,
    cpus: int,
    precision: str | None,
    cpu_flags: str | None = None,
) -> dict[str, Any]:
    """Everything that could change which candidate is fastest or whether it agrees."""
    return {
        "format": _FORMAT,
        "model": spec.name,
        "weights_sha256": weights_digest(spec),
        "precision_asked": (precision or "auto").lower(),
        "device": device,
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags if cpu_flags is not None else detect_cpu_features().describe(),
        "cpus": cpus,
        "versions": library_versions(),
    }


def tuning_dir() -> Path:
    return get_settings().home / "tuning"


def choice_path(key: dict[str, Any]) -> Path:
    digest = short_digest(json.dumps(key, sort_keys=True))
    return tuning_dir() / f"{key['model'].replace('/', '_')}-{digest}.json"


def cached_tuning(key: dict[str, Any]) -> Tuning | None:
    """What was measured under `key`, or None (never measured, or a damaged file, which is redone)."""
    path = choice_path(key)
    try:
        data = json.loads(path.read_text())
        if data.get("key") != key:
            return None
        return Tuning.from_dict(data["tuning"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable tuning record (%s); measuring again", path, exc)
        return None


def remember(key: dict[str, Any], tuned: Tuning) -> None:
    try:
        write_json(choice_path(key), {"key": key, "tuning": tuned.to_dict()})
    except OSError as exc:  # a read-only home: the choice holds for this process only
        log.warning("could not remember the engine choice in %s (%s)", tuning_dir(), exc)


# -- measuring ------------------------------------------------------------------------------------


def check_photos() -> list[tuple[str, bytes]]:
    """(name, JPEG bytes) of the check photos shipped in the package, in name order."""
    folder = files("pixelsift").joinpath("data/check")
    return [
        (e.name, e.read_bytes())
        for e in sorted(folder.iterdir(), key=lambda e: e.name)
        if e.name.endswith(".jpg")
    ]


def check_pixels(preprocessing: Preprocessing) -> np.ndarray:
    """uint8 check batch: each check photo whole and its centre (each also mirrored) and its four corners."""
    from PIL import Image, ImageOps

    from pixelsift.imaging.images import open_image

    out = []
    for name, data in check_photos():
        img = open_image(data, name=name)
        w, h = img.size
        cw, ch = round(w * 0.7), round(h * 0.7)
        boxes = [(0, 0, w, h), (0, 0, cw, ch), (w - cw, 0, w, ch), (0, h - ch, cw, h), (w - cw, h - ch, w, h)]
        boxes.append(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2))
        for i, box in enumerate(boxes):
            crop: Image.Image = img.crop(box)
            out.append(preprocessing.pixels(crop))
            if i in (0, 5):  # the whole photo and its centre, mirrored too
                out.append(preprocessing.pixels(ImageOps.mirror(crop)))
    return np.stack(out)


DECIDED = 0.05  # fp32's best class ahead of its second by this much probability: not a tie


Outputs = tuple[np.ndarray, ...]  # a runner's outputs for a batch (features, logits; box codes, logits)


def outputs_of(runner: Any, pixels: np.ndarray, batch: int, streams: int = 1) -> Outputs:
    """Every output of `pixels`, run `batch` at a time on `streams` threads at once."""
    chunks = [pixels[i : i + batch] for i in range(0, len(pixels), batch)]
    if streams <= 1:
        parts = [tuple(runner(chunk)) for chunk in chunks]
    else:
        with ThreadPoolExecutor(streams, thread_name_prefix="pixelsift-check") as pool:
            parts = list(pool.map(lambda chunk: tuple(runner(chunk)), chunks))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(parts[0])))


MIN_DECIDED = 10  # fewer decided check photos than this (an untrained network): every photo counts


def decided(logits: np.ndarray) -> np.ndarray:
    """Rows where the best class is ahead of the second by at least DECIDED (any change of arithmetic
    flips a near-tie, so ties say nothing about whether an engine computes the same network). When
    fewer than MIN_DECIDED rows are decided, all rows: then agreement is judged on ties too, which
    only an engine computing the same numbers passes."""
    probs = np.sort(softmax(logits), 1)
    keep = (probs[:, -1] - probs[:, -2]) >= DECIDED
    return keep if keep.sum() >= min(MIN_DECIDED, len(keep)) else np.ones_like(keep)


@dataclass(frozen=True)
class Agreement:
    """How a candidate's outputs are compared with torch fp32's on the check photos: `compare` gives
    the share alike, and a candidate needs at least `minimum`."""

    compare: Callable[[Outputs, Outputs], float]
    minimum: float


def top1_agreement(reference: Outputs, found: Outputs) -> float:
    """Classification: the share of decided check photos whose top-1 class is fp32's."""
    logits, got = reference[1], found[1]
    keep = decided(logits)
    return float((got.argmax(1) == logits.argmax(1))[keep].mean())


TOP1 = Agreement(top1_agreement, MIN_AGREEMENT)

# Detection: what a reduced-precision engine must keep of fp32's detections on the check photos.
DETECTION_SCORE = 0.3  # detections at or above this score are compared (the SSD graph's own threshold)
DETECTION_IOU = 0.9  # a detection is kept when the other side has one of its class overlapping this much
MIN_DETECTION_AGREEMENT = 0.95

Found = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per image: boxes (N, 4), scores (N,), class ids


def matched_detections(reference: Found, found: Found) -> tuple[int, int]:
    """(detections with a counterpart, detections) over both sides' detections at or above
    DETECTION_SCORE: a counterpart is a detection of the same class on the other side, at or above
    the score too, with IoU >= DETECTION_IOU. Both sides count, so a lost and a new detection each
    cost one."""
    agreed = total = 0
    for (ref_boxes, ref_scores, ref_ids), (got_boxes, got_scores, got_ids) in zip(
        reference, found, strict=True
    ):
        ref_keep, got_keep = ref_scores >= DETECTION_SCORE, got_scores >= DETECTION_SCORE
        a_boxes, a_ids = ref_boxes[ref_keep], ref_ids[ref_keep]
        b_boxes, b_ids = got_boxes[got_keep], got_ids[got_keep]
        total += len(a_ids) + len(b_ids)
        if len(a_ids) and len(b_ids):
            alike = (box_iou(a_boxes, b_boxes) >= DETECTION_IOU) & (a_ids[:, None] == b_ids[None, :])
            agreed += int(alike.any(1).sum()) + int(alike.any(0).sum())
    return agreed, total


def detection_agreement(detections: Callable[[Outputs], Found]) -> Agreement:
    """The agreement of a detector whose raw outputs `detections` turns into each image's detections
    (its record's `DetectorSpec.detections`): the share of detections with a counterpart on the
    other side (`matched_detections`). With no detection at all on the check photos (an untrained
    network), the share of anchors whose best class is fp32's."""

    def compare(reference: Outputs, found: Outputs) -> float:
        agreed, total = matched_detections(detections(reference), detections(found))
        if total:
            return agreed / total
        return float((found[-1].argmax(-1) == reference[-1].argmax(-1)).mean())

    return Agreement(compare, MIN_DETECTION_AGREEMENT)


def measure_rate(runner: Any, batch: np.ndarray, streams: int, seconds: float = SECONDS) -> float:
    """Images/s of `streams` threads calling `runner(batch)` at once for `seconds`, each thread warmed
    up first (oneDNN and ONNX Runtime prepare their kernels per thread on the first call)."""
    runner(batch)  # one call in this thread first: a runtime's one-time set-up never races
    done = [0] * streams
    ready = threading.Barrier(streams + 1)
    deadline = [float("inf")]  # set once every thread is warm
    errors: list[BaseException] = []
    stop = threading.Event()

    def loop(i: int) -> None:
        try:
            runner(batch)
        except BaseException as exc:
            errors.append(exc)
        try:
            ready.wait()
        except threading.BrokenBarrierError:  # interrupted before the measurement began
            return
        try:
            while not stop.is_set() and not errors and time.perf_counter() < deadline[0]:
                runner(batch)
                done[i] += len(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(streams)]
    for t in threads:
        t.start()
    try:
        ready.wait()
        start = time.perf_counter()
        deadline[0] = start + seconds
        for t in threads:
            t.join()
    except BaseException:
        # Ctrl-C: every measuring thread ends its call before this one leaves. A thread still inside a
        # native runtime when the interpreter exits aborts the process ("terminate called ...").
        stop.set()
        ready.abort()
        for t in threads:
            t.join()
        raise
    if errors:
        raise errors[0]
    return sum(done) / (time.perf_counter() - start)


Build = Callable[[Candidate, int, int], Any]  # (candidate, threads per stream, streams) -> runner


def decode_cost(preprocessing: Preprocessing, repeats: int = 3) -> float:
    """Seconds one core takes to decode and preprocess one check photo (best of `repeats` passes)."""
    from pixelsift.imaging.images import open_image

    photos = [data for _, data in check_photos()]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for data in photos:
            preprocessing.pixels(open_image(data, min_size=preprocessing.resize))
        best = min(best, (time.perf_counter() - start) / len(photos))
    return best


def _failed(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def measure(
    options: Sequence[Candidate],
    build: Build,
    check: np.ndarray,
    cpus: int,
    purposes: Sequence[str] = PURPOSES,
    seconds: float = SECONDS,
    decode_seconds: float = 0.0,
    agreement: Agreement = TOP1,
) -> list[Measurement]:
    """Time every candidate at one stream per CPU; then, fastest first, check top-1 agreement with
    torch fp32 on the decided check photos until one agrees for each purpose (a slower candidate
    cannot win, so it is not checked); then time the winners at the other stream counts.
    `agreement` compares a candidate's outputs with fp32's (`TOP1`, `detection_agreement(...)`).
    `decode_seconds` (one image's decode + preprocess on one core) turns model rates into end-to-end
    estimates, `streams / (decode + streams / rate)`: each stream decodes its own batches. Candidates
    that fail to build or run are recorded with the reason, never raised."""
    counts = stream_choices(cpus)
    first = counts[-1]  # one stream per CPU (up to MAX_STREAMS): the usual best for throughput
    results: list[Measurement] = []
    runners: dict[Candidate, Any] = {}

    def timed(m: Measurement, runner: Any) -> None:
        m.images_per_s = measure_rate(runner, _batch_of(check, int(runner.batch_size)), m.streams, seconds)
        if decode_seconds > 0:
            m.end_to_end = m.streams / (decode_seconds + m.streams / m.images_per_s)

    for cand in options:
        m = Measurement(cand.engine, cand.precision, first, max(1, cpus // first), needed=agreement.minimum)
        results.append(m)
        try:
            runners[cand] = build(cand, m.threads, m.streams)
            timed(m, runners[cand])
        except Exception as exc:  # an export or a runtime that fails is a candidate less, never an error
            m.error = _failed(exc)
            runners.pop(cand, None)
    reference_runner = runners.get(REFERENCE) or build(REFERENCE, max(1, cpus // first), first)
    reference_outputs = outputs_of(reference_runner, check, 4, first)
    for m in results:
        if m.candidate == REFERENCE and m.error is None:
            m.agreement = 1.0
    for purpose in purposes:
        ranked = sorted(
            (m for m in results if m.error is None and allowed(m.candidate, purpose)),
            key=lambda m: m.score,
            reverse=True,
        )
        for m in ranked:
            if m.agreement is None:
                runner = runners[m.candidate]
                try:
                    found = outputs_of(runner, check, int(runner.batch_size), m.streams)
                    m.agreement = agreement.compare(reference_outputs, found)
                except Exception as exc:
                    m.error = _failed(exc)
                    continue
            if m.usable:
                break
    served = [p for p in purposes if any(allowed(m.candidate, p) for m in results)]
    best = {pick(results, purpose).candidate for purpose in served}
    for cand in sorted(best, key=lambda c: c.label):
        agreed = next(m.agreement for m in results if m.candidate == cand)
        for streams in counts[:-1]:
            m = Measurement(
                cand.engine,
                cand.precision,
                streams,
                max(1, cpus // streams),
                agreement=agreed,
                needed=agreement.minimum,
            )
            results.append(m)
            try:
                timed(m, build(cand, m.threads, m.streams))
            except Exception as exc:
                m.error = _failed(exc)
    return results


def _batch_of(check: np.ndarray, size: int) -> np.ndarray:
    reps = -(-size // len(check))
    return np.ascontiguousarray(np.concatenate([check] * reps)[:size])
