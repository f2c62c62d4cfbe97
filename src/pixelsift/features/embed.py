"""Images -> normalised float32 vectors: the penultimate layer of a pretrained classifier.

Three ways in, one code path (`FeatureExtractor`, through the on-disk feature cache):

>>> pixelsift.embed("birds/").to_pandas().head()                    # doctest: +SKIP
>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.pipeline import make_pipeline
>>> clf = make_pipeline(Embedder("efficientnet_lite0"), LogisticRegression())   # doctest: +SKIP
>>> clf.fit(paths, labels).predict(["new.jpg"])                     # doctest: +SKIP

and `pixelsift embed ROOT -o vectors.parquet` on the command line. The vectors are exactly the
`features` that `ImageModel.iter_outputs` returns (same forward pass as classification), normalised:

- "l2" (default of `embed` and `pixelsift embed`): unit length, so cosine similarity is a dot product;
- "rms" (default of the `Embedder`): unit length times sqrt(dim), i.e. every feature has unit RMS.
  Same directions, but scikit-learn's default regularisation suits them: `LogisticRegression()` on
  unit-length 1280-d vectors is about 200x over-regularised (0.83 instead of 0.97 validation accuracy
  on a noisy 6-class test set; on the birds set both give 0.971);
- "none": the raw features.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import Unpack

from pixelsift.core.optional import optional_import
from pixelsift.core.outputs import write_atomically
from pixelsift.core.paths import data_frame, path_columns, path_text
from pixelsift.errors import UsageError
from pixelsift.features.extractor import (
    FeatureExtractor,
    feature_names,
    normalization_name,
    normalize_vectors,
)
from pixelsift.imaging.datasets import Dataset, looks_like_dataset, read_dataset
from pixelsift.imaging.images import expand_inputs
from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.options import RunKwargs, RunOptions

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Embeddings:
    """Vectors for a set of images, with their paths (and split / class when the input was a data set)."""

    model: str
    paths: list[str]
    vectors: np.ndarray  # (n, dim) float32
    splits: list[str | None] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    normalization: str = "l2"

    def __post_init__(self) -> None:
        n = len(self.paths)
        self.splits = self.splits or [None] * n
        self.labels = self.labels or [None] * n
        if self.vectors.shape[0] != n or len(self.splits) != n or len(self.labels) != n:
            raise ValueError(
                f"{n} paths but {self.vectors.shape[0]} vectors, "
                f"{len(self.splits)} splits, {len(self.labels)} labels"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.vectors.shape[0]), int(self.vectors.shape[1]))

    def to_pandas(self) -> pd.DataFrame:
        """One row per image: path, split, label, then one column per dimension (f0, f1, ...)."""
        import pandas as pd

        meta = data_frame({"path": self.paths, "split": self.splits, "label": self.labels})
        values = pd.DataFrame(self.vectors, columns=feature_names(self.shape[1]))
        return pd.concat([meta, values], axis=1)

    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write as Parquet (`.parquet`, needs pyarrow), `.npz` or `.csv`, chosen by the extension.
        A file name that is not UTF-8 is kept exactly in Parquet's `path_bytes` column and in `.npz`, and
        shown with `\\xNN` escapes in `path` (see `core.paths`). An existing file is replaced only when
        it is embeddings pixelsift wrote, or with `force` (`check_output`)."""
        target = check_output(path, force)
        suffix = target.suffix.lower()
        target.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            if suffix == ".npz":
                with open(tmp, "wb") as fh:
                    np.savez(
                        fh,
                        paths=np.asarray(self.paths, dtype=str),
                        splits=np.asarray([s or "" for s in self.splits], dtype=str),
                        labels=np.asarray([s or "" for s in self.labels], dtype=str),
                        vectors=self.vectors,
                    )
            elif suffix == ".csv":
                table = self.to_pandas()
                table["path"] = [path_text(p) for p in self.paths]  # CSV is text: `\xNN` for such bytes
                table.to_csv(tmp, index=False)
            else:
                _write_parquet(self, tmp)

        return write_atomically(target, write, "the embeddings")


SUFFIXES = (".parquet", ".npz", ".csv")


def check_output(path: str | os.PathLike[str], force: bool = False) -> Path:
    """The embeddings file to write: a known format, and not a file of the user's. An existing file is
    replaced only when it holds embeddings pixelsift wrote (`is_embeddings_file`) or with `force`: a
    table, a NumPy archive or a CSV of anything else is never overwritten."""
    target = Path(path).expanduser()
    if target.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{target}: unknown output format; use a .parquet, .npz or .csv file name")
    if target.exists() and not force and not is_embeddings_file(target):
        raise UsageError(
            f"{target}: a file that is not pixelsift embeddings is already there; choose another name, "
            "or --force to replace it"
        )
    return target


def is_embeddings_file(path: Path) -> bool:
    """Whether `path` holds embeddings as `Embeddings.save` writes them: Parquet with pixelsift's model
    in its metadata, an `.npz` with exactly its four arrays, a CSV whose header is path, split, label,
    f0, f1 ... Unreadable or other files: False."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Reading Parquet files")
            metadata = pq.read_schema(path).metadata or {}
            return b"pixelsift.model" in metadata
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return set(archive.files) == {"paths", "splits", "labels", "vectors"}
        if suffix == ".csv":
            with open(path, encoding="utf-8", errors="replace") as fh:
                header = fh.readline().strip().split(",")
            return (
                header[:3] == ["path", "split", "label"]
                and header[3:] == feature_names(len(header) - 3) != []
            )
    except Exception:  # a damaged or foreign file is not ours
        return False
    return False


def _write_parquet(embeddings: Embeddings, path: Path) -> None:
    pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Writing Parquet files")
    import pyarrow as pa  # imported with pyarrow.parquet

    names = path_columns(embeddings.paths)  # `path`, and `path_bytes` when a name is not UTF-8
    columns: dict[str, Any] = {
        "path": pa.array(names["path"], pa.string()),
        "split": pa.array([None if s is None else path_text(s) for s in embeddings.splits], pa.string()),
        "label": pa.array([None if s is None else path_text(s) for s in embeddings.labels], pa.string()),
    }
    if "path_bytes" in names:
        columns["path_bytes"] = pa.array(names["path_bytes"], pa.binary())
    for i, name in enumerate(feature_names(embeddings.shape[1])):
        columns[name] = pa.array(embeddings.vectors[:, i], pa.float32())
    table = pa.table(columns)
    table = table.replace_schema_metadata({"pixelsift.model": embeddings.model})
    pq.write_table(table, path)


def labelled_inputs(
    inputs: Sequence[str | os.PathLike[str]],
) -> tuple[list[Any], list[str | None], list[str | None]]:
    """Inputs to embed, with split and class per image when the only input is a data-set folder."""
    if len(inputs) == 1 and looks_like_dataset(Path(inputs[0]).expanduser()):
        dataset: Dataset = read_dataset(inputs[0])
        return (
            [s.path for s in dataset.samples],
            [s.split for s in dataset.samples],
            [s.label for s in dataset.samples],
        )
    sources = list(expand_inputs(inputs))
    return sources, [None] * len(sources), [None] * len(sources)


def embed(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    model: str = DEFAULT_CLASSIFIER,
    normalize: str | bool = "l2",
    cache: bool = True,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    **run: Unpack[RunKwargs],
) -> Embeddings:
    """Feature vectors for files, folders or globs; a single data-set folder also gives split and class.

    `normalize`: "l2" (unit length, the default), "rms" (unit length x sqrt(dim)) or "none".
    Unreadable images are left out and listed in `.failures`. How the network runs: `run_options`, or
    the keywords device, precision, engine, threads, batch_size, workers.

    >>> e = embed("birds/")                    # doctest: +SKIP
    >>> e.shape, e.to_pandas().iloc[:3, :5]    # doctest: +SKIP
    """
    how = normalization_name(normalize)
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    sources, splits, labels = labelled_inputs(items)
    extractor = FeatureExtractor(model, cache=cache, run_options=RunOptions.of(run_options, **run))
    paths: list[str] = []
    vectors: list[np.ndarray] = []
    kept_splits: list[str | None] = []
    kept_labels: list[str | None] = []
    failures: list[tuple[str, str]] = []
    rows = extractor.iter_features(sources, progress=progress, total=len(sources), desc="embed")
    for row, split, label in zip(rows, splits, labels, strict=True):
        if row.vector is None:
            failures.append((row.path, row.error or "unreadable"))
            continue
        paths.append(row.path)
        vectors.append(row.vector)
        kept_splits.append(split)
        kept_labels.append(label)
    matrix = np.stack(vectors) if vectors else np.zeros((0, extractor.embed_dim), np.float32)
    matrix = normalize_vectors(matrix, how)
    return Embeddings(extractor.spec.name, paths, matrix, kept_splits, kept_labels, failures, how)
