"""Results of `pixelsift batch` jobs as a source for the photo index (`pixelsift index --from-batch`).

An embed job gives each photo's raw penultimate features (`--normalize none`, the default), from
which the index derives the classifier's probabilities with the model's head, without decoding the
photo; a detect job gives its detections. Photos are matched by content hash, so the job may have
read them from another mount point or machine. What a job does not cover is computed locally.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pixelsift.batch.output import SHARD_GLOB, read_job_file
from pixelsift.core.optional import optional_import
from pixelsift.errors import UsageError
from pixelsift.library.rows import Detection


class BatchResults:
    """Per content hash: the features of an embed job and the detections of a detect job."""

    def __init__(self, folders: Sequence[str | os.PathLike[str]], model: str):
        self.vectors: dict[str, np.ndarray] = {}
        self.detections: dict[str, list[Detection]] = {}
        self.detector: str | None = None
        pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Reading batch jobs' output")
        for folder in folders:
            path = Path(folder).expanduser()
            job = read_job_file(path)
            shards = sorted(path.glob(SHARD_GLOB))
            if job is None or not shards:
                raise UsageError(f"--from-batch {path}: no batch output here (_job.json and part-*.parquet)")
            task = job.get("task")
            if task == "embed":
                self._embed(path, job, shards, model, pq)
            elif task == "detect":
                self._detect(job, shards, pq)
            else:
                raise UsageError(
                    f"--from-batch {path}: a {task} job; the index takes embed jobs (features) and "
                    "detect jobs"
                )

    def _embed(self, path: Path, job: dict, shards: list[Path], model: str, pq: object) -> None:
        if job.get("model") != model:
            raise UsageError(
                f"--from-batch {path}: the job ran {job.get('model')!r}, this index uses {model!r}; "
                f"use the same model (index -m {job.get('model')}, or batch embed -m {model})"
            )
        if (job.get("options") or {}).get("normalize") != "none":
            raise UsageError(
                f"--from-batch {path}: its vectors are L2-normalised; the index needs the raw features: "
                "run `pixelsift batch embed ... --normalize none` (the default)"
            )
        for shard in shards:
            table = pq.read_table(shard, columns=["sha256", "error", "vector"])  # type: ignore[attr-defined]
            data = table.to_pydict()
            for sha, error, vector in zip(data["sha256"], data["error"], data["vector"], strict=True):
                if sha and error is None and vector is not None:
                    self.vectors[sha] = np.asarray(vector, np.float32)

    def _detect(self, job: dict, shards: list[Path], pq: object) -> None:
        self.detector = str(job.get("model"))
        for shard in shards:
            table = pq.read_table(shard, columns=["sha256", "error", "objects"])  # type: ignore[attr-defined]
            data = table.to_pydict()
            for sha, error, objects in zip(data["sha256"], data["error"], data["objects"], strict=True):
                if sha and error is None and objects is not None:
                    self.detections[sha] = [
                        Detection(str(o["label"]), float(o["score"]), tuple(float(v) for v in o["box"]))  # type: ignore[arg-type]
                        for o in objects
                    ]

    def __len__(self) -> int:
        return len(self.vectors)
