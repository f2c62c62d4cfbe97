"""Batch jobs over photo archives too big for one process: classify, embed or detect millions of
photos into Parquet shards, on this machine or a Ray cluster, resumable.

    >>> summary = pixelsift.batch.run("embed", "photos/", "out/", engine="ray", workers=4)   # doctest: +SKIP
    >>> pixelsift.batch.read("out/").head()                                                 # doctest: +SKIP

Modules: `job` (the picklable job record and the `Worker` every engine runs), `inputs` (folders,
globs, manifests), `output` (the shards, `_job.json`, `read`), `run` (planning, resume, the local and
Ray engines).
"""

from __future__ import annotations

from pixelsift.batch.job import TASKS, BatchJob, Worker
from pixelsift.batch.output import read
from pixelsift.batch.run import ENGINES, BatchSummary, EngineOptions, run

__all__ = ["ENGINES", "TASKS", "BatchJob", "BatchSummary", "EngineOptions", "Worker", "read", "run"]
