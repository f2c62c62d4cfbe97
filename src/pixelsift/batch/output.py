"""A batch job's output folder: Parquet shards with deterministic names, and `_job.json`.

    OUT_DIR/part-00000.parquet     inputs 0 .. shard_size-1 of the sorted input list
    OUT_DIR/part-00001.parquet     the next shard_size inputs ...
    OUT_DIR/_job.json              task, model, weights, engine, options, pixelsift version, counts

A shard is written whole (to a temporary name, then renamed), so an interrupted job leaves finished
shards only; `resume` keeps each shard whose rows still match their files (path, size, mtime).
Rows: path, size, mtime_ns, sha256, width, height, error, then the task's columns (classify:
labels, scores; embed: vector (fixed-size list of float32), norm (the raw features' L2 norm, so
unit vectors give the raw features back: vector x norm), labels, scores, scene (the probability of
each scene region, `imaging.scene`: {sky, grass, tree, road}; jobs from before it lack the column);
detect: objects, a list
of {label, score, box [x1, y1, x2, y2]} in the photo's pixels). A shard with a file name that is not
UTF-8 also has `path_bytes`, every row's name as bytes (`path` shows such a name with `\\xNN` escapes;
see `core.paths`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.jsontext import to_json
from pixelsift.core.optional import optional_import
from pixelsift.core.outputs import write_atomically
from pixelsift.core.paths import path_columns, path_text, paths_from_columns
from pixelsift.errors import UsageError
from pixelsift.imaging import scene

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

JOB_FILE = "_job.json"
SHARD_GLOB = "part-*.parquet"


def _pa() -> Any:
    return optional_import("pyarrow", "pyarrow", "parquet", "Batch jobs' Parquet output")


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def schema(task: str, dim: int) -> pa.Schema:
    pa = _pa()
    fields = [
        pa.field("path", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("error", pa.string()),
    ]
    top = [pa.field("labels", pa.list_(pa.string())), pa.field("scores", pa.list_(pa.float32()))]
    if task == "classify":
        fields += top
    elif task == "embed":
        regions = pa.struct([(region.name, pa.float32()) for region in scene.REGIONS])
        fields += [
            pa.field("vector", pa.list_(pa.float32(), dim)),
            pa.field("norm", pa.float32()),
            *top,
            pa.field("scene", regions),
        ]
    else:
        box = pa.struct([("label", pa.string()), ("score", pa.float32()), ("box", pa.list_(pa.float32(), 4))])
        fields.append(pa.field("objects", pa.list_(box)))
    return pa.schema(fields)


def rows_to_table(
    task: str, rows: Sequence[dict[str, Any]], vectors: np.ndarray | None, dim: int
) -> pa.Table:
    """Result rows (and embed vectors, row-aligned) as a table of the task's schema, sorted by path."""
    pa = _pa()
    order = sorted(range(len(rows)), key=lambda i: rows[i]["path"])
    rows = [rows[i] for i in order]
    columns: dict[str, Any] = {
        name: [r.get(name) for r in rows] for name in ("size", "mtime_ns", "sha256", "width", "height")
    }
    columns.update(path_columns(r["path"] for r in rows))
    columns["error"] = [None if r.get("error") is None else path_text(r["error"]) for r in rows]
    ok = [r.get("error") is None for r in rows]
    if task in ("classify", "embed"):
        columns["labels"] = [r.get("labels") if good else None for r, good in zip(rows, ok, strict=True)]
        columns["scores"] = [r.get("scores") if good else None for r, good in zip(rows, ok, strict=True)]
    if task == "embed":
        matrix = np.zeros((len(rows), dim), np.float32) if vectors is None else np.asarray(vectors)[order]
        flat = pa.array(np.ascontiguousarray(matrix, np.float32).reshape(-1), pa.float32())
        failed = pa.array([not good for good in ok])  # a failed photo's vector is null
        columns["vector"] = pa.FixedSizeListArray.from_arrays(flat, dim, mask=failed)
        columns["norm"] = [r.get("norm") if good else None for r, good in zip(rows, ok, strict=True)]
        columns["scene"] = [r.get("scene") if good else None for r, good in zip(rows, ok, strict=True)]
    if task == "detect":
        columns["objects"] = [r.get("objects") if good else None for r, good in zip(rows, ok, strict=True)]
    target = schema(task, dim)
    if "path_bytes" in columns:
        target = target.append(pa.field("path_bytes", pa.binary()))
    arrays = [
        columns[f.name] if isinstance(columns[f.name], pa.Array) else pa.array(columns[f.name], f.type)
        for f in target
    ]
    return pa.Table.from_arrays(arrays, schema=target)


def write_shard(folder: Path, index: int, table: pa.Table) -> Path:
    """Write one shard atomically: readers see the whole shard or none of it."""
    pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Batch jobs' Parquet output")
    return write_atomically(folder / shard_name(index), lambda tmp: pq.write_table(table, tmp), "a shard")


def finished_inputs(folder: Path, index: int) -> dict[str, tuple[int | None, int | None]] | None:
    """path -> (size, mtime_ns) of the rows of shard `index`, or None when it is not there or damaged."""
    pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Batch jobs' Parquet output")
    path = folder / shard_name(index)
    if not path.is_file():
        return None
    try:
        names = pq.read_schema(path).names
        table = pq.read_table(
            path, columns=[c for c in ("path", "path_bytes", "size", "mtime_ns") if c in names]
        )
    except Exception:  # a damaged shard of ours is done again, never trusted
        return None
    data = table.to_pydict()
    paths = paths_from_columns(data["path"], data.get("path_bytes"))
    return {p: (s, m) for p, s, m in zip(paths, data["size"], data["mtime_ns"], strict=True)}


def write_job_file(folder: Path, record: dict[str, Any]) -> None:
    text = to_json(record) + "\n"
    write_atomically(folder / JOB_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"), "the job record")


def read_job_file(folder: Path) -> dict[str, Any] | None:
    path = folder / JOB_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UsageError(f"{path} is damaged; remove it (and the shards) or use another -o folder") from None
    return record if isinstance(record, dict) else None


def read(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Every row of a batch job's output, as a DataFrame (shards in order, rows sorted by path).

    >>> pixelsift.batch.read("out/").head()      # doctest: +SKIP
    """
    pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Reading batch jobs' output")
    out = Path(folder).expanduser()
    shards = sorted(out.glob(SHARD_GLOB))
    if not shards:
        raise UsageError(f"{out}: no batch output here (part-*.parquet); run `pixelsift batch ... -o {out}`")
    pa = _pa()
    # promote: only the shards with a name that is not UTF-8 have `path_bytes` (null in the others)
    return pa.concat_tables([pq.read_table(s) for s in shards], promote_options="default").to_pandas()
