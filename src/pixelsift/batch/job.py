"""What a batch job does, as a small picklable record, and the worker that does it.

A `BatchJob` travels to every worker (a Ray actor, or this process); `Worker(job)` loads the model
once and then turns batches of paths into result columns. The same worker runs under every engine,
so the output never depends on where it ran.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pixelsift.batch.files import is_uri, read_bytes, stat
from pixelsift.core.arrays import l2_normalize, softmax, top_k_indices
from pixelsift.core.hashing import sha256_bytes, sha256_file
from pixelsift.errors import DetectorUnavailableError, ImageError, UsageError
from pixelsift.imaging import scene
from pixelsift.imaging.images import open_image
from pixelsift.models.records import DetectorSpec
from pixelsift.models.registry import DEFAULT_CLASSIFIER, DEFAULT_TOP_K, get_model_spec
from pixelsift.runtime.options import RunOptions

TASKS = ("classify", "embed", "detect")
NORMALIZE = ("l2", "none")


@dataclass(frozen=True)
class BatchJob:
    """One batch job's task and model settings (everything a worker needs to rebuild the model)."""

    task: str
    model: str | None = None  # registry name; None: the task's default
    top_k: int = DEFAULT_TOP_K
    conf: float = 0.25  # detect: minimum box score
    normalize: str = "l2"  # embed: "l2" (unit vectors, as `pixelsift embed`) or "none" (raw features)
    run_options: RunOptions = field(default_factory=RunOptions)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"unknown batch task {self.task!r}; use one of {', '.join(TASKS)}")
        if self.top_k < 1:
            raise UsageError("--top-k must be at least 1")
        if not 0.0 <= self.conf <= 1.0:
            raise UsageError(f"--conf must be between 0 and 1, not {self.conf}")
        if self.normalize not in NORMALIZE:
            raise UsageError(f"--normalize must be one of {', '.join(NORMALIZE)}, not {self.normalize!r}")

    def model_name(self) -> str:
        """The registry name of the model this job runs (the default one resolved)."""
        if self.model is not None:
            return get_model_spec(self.model).name
        if self.task == "detect":
            from pixelsift.detect.api import default_detector_name  # detection only for detect jobs

            name = default_detector_name()
            if name is None:
                raise UsageError("no object detector is available here; see `pixelsift models --task detect`")
            return name
        return DEFAULT_CLASSIFIER

    def check(self) -> None:
        """Fail here, with pixelsift's message, when the model cannot load (unknown name, weights
        missing and not downloadable), rather than inside every remote worker."""
        from pixelsift.models import weights  # a registry lookup and a file check, no torch

        spec = get_model_spec(self.model_name())
        if isinstance(spec, DetectorSpec):  # a backend that cannot run here (OpenCV 5 and a TF graph)
            from pixelsift.detect.api import backend_problem

            problem = backend_problem(spec)
            if problem is not None:
                raise DetectorUnavailableError(f"detector {spec.name} cannot run here: {problem}")
        if spec.weights is not None:
            weights.resolve(spec)

    def describe(self) -> dict[str, Any]:
        """The job's settings as JSON-ready values (for `_job.json`)."""
        record = asdict(self)
        record["run_options"] = {k: v for k, v in asdict(self.run_options).items()}
        return json.loads(json.dumps(record, default=str))


def _stat_row(path: str, data: bytes | None = None) -> dict[str, Any]:
    """path, size, mtime_ns and content sha256 of one input (the file is read when `data` is None)."""
    if data is None and is_uri(path):
        data = read_bytes(path)[0]
    size, mtime_ns = stat(path)
    if size is None:
        raise ImageError(path, "it is gone")
    digest = sha256_bytes(data) if data is not None else sha256_file(path)
    return {"path": path, "size": size, "mtime_ns": mtime_ns, "sha256": digest}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def error_row(path: str, reason: str) -> dict[str, Any]:
    """The result row of an input that gave no result, saying why."""
    size, mtime_ns = stat(path)
    return {"path": path, "size": size, "mtime_ns": mtime_ns, "sha256": None, "error": reason}


class Worker:
    """Loads the job's model once; `__call__({"path": [...]})` gives one result row per path.

    The returned batch is a dict of numpy arrays (what Ray Data's `map_batches` passes around):
    "path", "row" (each row as JSON: sizes, hash, labels, boxes, error) and, for embed, "vector"."""

    def __init__(self, job: BatchJob):
        self.job = job
        self.model_name = job.model_name()
        self.model: Any = None
        self.detector: Any = None
        if job.task == "detect":
            from pixelsift.detect import load_detector  # detection only for detect jobs

            self.detector = load_detector(self.model_name, job.run_options, conf=job.conf)
        else:
            from pixelsift.runtime.loaded import ImageModel  # torch: in the worker, not the driver

            purpose = "classify" if job.task == "classify" else "features"  # int8 only for classes
            self.model = ImageModel.load(self.model_name, job.run_options, purpose=purpose)

    @property
    def dim(self) -> int:
        return int(self.model.embed_dim) if self.model is not None else 0

    def ran(self) -> dict[str, str | None]:
        """How the model actually runs here: the engine and precision `auto` chose (or were asked for),
        and the device; None for what a detector backend does not say."""
        loaded = self.model if self.model is not None else self.detector
        device = getattr(getattr(loaded, "runner", None), "device", None) or getattr(loaded, "device", None)
        return {
            "engine": _text(getattr(loaded, "engine", None)),
            "precision": _text(getattr(loaded, "precision", None)),
            "device": _text(device),
        }

    @staticmethod
    def merge_ran(seen: Iterable[dict[str, str | None]]) -> dict[str, str | None] | None:
        """What several workers ran on, as one record: a value all agree on, else the values seen
        ("cpu, cuda:0" for a job whose nodes differ); None when no worker reported."""
        records = list(seen)
        if not records:
            return None
        merged: dict[str, str | None] = {}
        for key in dict.fromkeys(k for r in records for k in r):
            values = sorted({str(r[key]) for r in records if r.get(key) is not None})
            merged[key] = ", ".join(values) if values else None
        return merged

    def __call__(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        # Paths travel as the bytes of the name (Arrow's strings must be UTF-8; a file name need not be).
        paths = [os.fsdecode(p) if isinstance(p, bytes) else str(p) for p in batch["path"]]
        rows, vectors = self.process(paths)
        out: dict[str, np.ndarray] = {
            "path": np.array([os.fsencode(p) for p in paths], dtype=object),
            "row": np.array([json.dumps(r) for r in rows], dtype=object),
            # how this worker's model runs (engine, precision, device): the driver records it
            "ran": np.array([json.dumps(self.ran())] * len(paths), dtype=object),
        }
        if self.job.task == "embed":
            out["vector"] = vectors
        return out

    def process(self, paths: list[str]) -> tuple[list[dict[str, Any]], np.ndarray]:
        """One row per path, in order, and for embed the (N, D) vectors (zeros for failed rows)."""
        if self.job.task == "detect":
            return self._detect(paths), np.zeros((len(paths), 0), np.float32)
        return self._classify(paths)

    def _classify(self, paths: list[str]) -> tuple[list[dict[str, Any]], np.ndarray]:
        model = self.model
        preprocessing = model.preprocessing

        def decode(path: str) -> tuple[np.ndarray, dict[str, Any]]:
            data, _, _ = read_bytes(path)
            img = open_image(data, min_size=preprocessing.resize, name=path)  # as `classify` decodes it
            width, height = img.info.get("full_size", img.size)
            info = {**_stat_row(path, data), "width": width, "height": height}
            if self.job.task == "embed":  # the index takes the scene regions with the features
                info["scene"] = dict(scene.scene_labels(scene.small_copy(img)))
            return preprocessing.pixels(img), info

        rows: list[dict[str, Any]] = []
        vectors = np.zeros((len(paths), model.embed_dim if self.job.task == "embed" else 0), np.float32)
        categories = model.categories
        for i, (item, features, logits) in enumerate(model.iter_outputs(paths, decode=decode)):
            if logits is None:
                rows.append(error_row(item.path, item.error or "unreadable"))
                continue
            probabilities = softmax(logits)
            best = top_k_indices(probabilities, self.job.top_k)
            row = {
                **item.info,
                "error": None,
                "labels": [categories[j] for j in best],
                "scores": [float(probabilities[j]) for j in best],
            }
            rows.append(row)
            if self.job.task == "embed":
                vector = np.asarray(features, np.float32)
                vectors[i] = l2_normalize(vector[None])[0] if self.job.normalize == "l2" else vector
                row["norm"] = float(np.linalg.norm(vector))  # unit vector x norm = the raw features
        return rows, vectors

    def _detections(self, paths: list[str]) -> Iterator[Any]:
        """The detector's results for local paths (batched, as `pixelsift detect` runs) and URIs."""
        local = [p for p in paths if not is_uri(p)]
        results = {r.path: r for r in self.detector.iter_detect(local)} if local else {}
        for path in paths:
            if path in results:
                yield results[path]
                continue
            try:  # a URI: its bytes through pyarrow's filesystem, then the detector on the image
                yield self.detector.detect_result(open_image(read_bytes(path)[0], name=path), path=path)
            except ImageError as exc:
                from pixelsift.detect.detections import DetectionResult  # with the detector, as above

                yield DetectionResult(path, error=exc.reason)

    def _detect(self, paths: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for result in self._detections(paths):
            if not result.ok:
                rows.append(error_row(result.path, result.error or "unreadable"))
                continue
            try:
                row = _stat_row(result.path)
            except (OSError, ImageError) as exc:  # gone since it was decoded
                reason = exc.reason if isinstance(exc, ImageError) else str(exc)
                rows.append(error_row(result.path, reason))
                continue
            dets = result.detections
            objects = [
                {"label": name, "score": float(score), "box": [float(v) for v in box]}
                for name, score, box in zip(dets.class_names, dets.scores, dets.boxes, strict=True)
            ]
            rows.append(
                {**row, "width": result.width, "height": result.height, "error": None, "objects": objects}
            )
        return rows
