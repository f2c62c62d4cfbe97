"""Results of `pixelsift batch` jobs as a source for the photo index (`pixelsift index --from-batch`).

An embed job gives each photo's penultimate features (unit vectors and each row's `norm` with
`--normalize l2`, the default; raw with `--normalize none`), from which the index derives the
classifier's probabilities with the model's head, and its scene regions, without decoding the photo;
a detect job gives its detections. Photos are matched by content hash, so the job may have read them
from another mount point or machine. What a job does not cover is computed locally.

Jobs are read shard by shard, and of each shard only the hashes, then the rows of the photos asked
for: memory holds one shard's hashes and the matched rows, however many photos the job covers (a
million-photo embed job is about 5 GB of vectors).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.batch.output import SHARD_GLOB, read_job_file
from pixelsift.core.optional import optional_import
from pixelsift.errors import UsageError
from pixelsift.imaging import scene
from pixelsift.library.rows import Detection


class BatchResults:
    """The embed and detect jobs given to `--from-batch`: checked when opened (task, model, raw
    features), read when photos are matched (`detections_for`, `vectors_for`)."""

    def __init__(self, folders: Sequence[str | os.PathLike[str]], model: str):
        self.embed_shards: list[Path] = []  # raw features
        self.unit_shards: list[Path] = []  # unit vectors, with each row's norm
        self.detect_shards: list[Path] = []
        self.detector: str | None = None
        self._pq: Any = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Reading batch jobs' output")
        for folder in folders:
            path = Path(folder).expanduser()
            job = read_job_file(path)
            shards = sorted(path.glob(SHARD_GLOB))
            if job is None or not shards:
                raise UsageError(f"--from-batch {path}: no batch output here (_job.json and part-*.parquet)")
            task = job.get("task")
            if task == "embed":
                self._check_embed(path, job, model)
                if (job.get("options") or {}).get("normalize") == "l2":
                    self.unit_shards += shards
                else:
                    self.embed_shards += shards
            elif task == "detect":
                self.detector = str(job.get("model"))
                self.detect_shards += shards
            else:
                raise UsageError(
                    f"--from-batch {path}: a {task} job; the index takes embed jobs (features) and "
                    "detect jobs"
                )

    @staticmethod
    def _check_embed(path: Path, job: dict, model: str) -> None:
        if job.get("model") != model:
            raise UsageError(
                f"--from-batch {path}: the job ran {job.get('model')!r}, this index uses {model!r}; "
                f"use the same model (index -m {job.get('model')}, or batch embed -m {model})"
            )
        if (job.get("options") or {}).get("normalize") not in ("none", "l2"):
            raise UsageError(
                f"--from-batch {path}: its vectors are normalised in a way the index cannot undo; run "
                "`pixelsift batch embed` again"
            )

    def _matches(
        self,
        shards: list[Path],
        digests: set[str],
        column: str,
        scale: str | None = None,
        extra: str | None = None,
    ) -> Iterator[tuple[str, Any, Any, Any]]:
        """(hash, `column`'s value, `scale`'s value or None, `extra`'s value or None) for each good row
        whose hash is in `digests`, shard by shard: the hashes of a shard first, then the columns of its
        matching rows only; each hash once. `scale` must be in every shard; `extra` may be missing (a
        job from before it: None)."""
        pc = optional_import("pyarrow.compute", "pyarrow", "parquet", "Reading batch jobs' output")
        wanted = set(digests)
        for shard in shards:
            if not wanted:
                return
            keys = self._pq.read_table(shard, columns=["sha256", "error"])
            hashes = keys.column("sha256").to_pylist()
            errors = keys.column("error").is_null().to_pylist()
            rows = [i for i, (sha, ok) in enumerate(zip(hashes, errors, strict=True)) if ok and sha in wanted]
            if not rows:
                continue
            names = self._pq.read_schema(shard).names
            if scale is not None and scale not in names:
                raise UsageError(
                    f"--from-batch: {shard} holds unit vectors without their norms (a job from before "
                    "pixelsift kept them); run `pixelsift batch embed` again, or with --normalize none"
                )
            columns = [c for c in (column, scale, extra) if c is not None and c in names]
            table = self._pq.read_table(shard, columns=columns)
            values = pc.take(table.column(column), rows)
            scales, extras = (
                pc.take(table.column(name), rows).to_pylist() if name in columns else [None] * len(rows)
                for name in (scale, extra)
            )
            for i, value, factor, more in zip(rows, values, scales, extras, strict=True):
                sha = hashes[i]
                if sha in wanted and value.is_valid:
                    wanted.discard(sha)
                    yield sha, value, factor, more

    def features_for(
        self, digests: set[str]
    ) -> Iterator[tuple[str, np.ndarray, list[tuple[str, float]] | None]]:
        """The embed jobs' raw features of the photos with these content hashes, as they are read (unit
        vectors times their norms), with their scene regions ((region, probability) as the index
        stores them; None from a job that has not every region of this version)."""
        left = set(digests)
        for shards, scale in ((self.embed_shards, None), (self.unit_shards, "norm")):
            for sha, value, norm, regions in self._matches(shards, set(left), "vector", scale, "scene"):
                left.discard(sha)
                vector = np.asarray(value.values.to_numpy(zero_copy_only=False), np.float32)
                yield sha, vector * np.float32(norm) if scale else vector, scene.stored_labels(regions or {})

    def detections_for(self, digests: set[str]) -> dict[str, list[Detection]]:
        """The detect jobs' objects of the photos with these content hashes."""
        return {
            sha: [
                Detection(str(o["label"]), float(o["score"]), tuple(float(v) for v in o["box"]))  # type: ignore[arg-type]
                for o in value.as_py()
            ]
            for sha, value, _, _ in self._matches(self.detect_shards, digests, "objects")
        }
