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
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from typing_extensions import Unpack

from pixelsift.core.arrays import l2_normalize
from pixelsift.core.hashing import sha256_file
from pixelsift.core.optional import optional_import
from pixelsift.core.progress import progress_bar
from pixelsift.errors import EmbeddingError, ImageError, UsageError
from pixelsift.features.cache import FeatureCache, feature_key
from pixelsift.imaging.datasets import Dataset, looks_like_dataset, read_dataset
from pixelsift.imaging.images import expand_inputs
from pixelsift.imaging.pipeline import Decoder
from pixelsift.models import weights
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_spec_of
from pixelsift.runtime.options import RunKwargs, RunOptions

if TYPE_CHECKING:
    import pandas as pd

    from pixelsift.runtime.loaded import ImageModel

CHUNK = 256  # inputs looked up in the cache at a time: bounds memory on huge folders


class FeatureRow(NamedTuple):
    """One input's raw feature vector, or the reason it has none."""

    path: str
    vector: np.ndarray | None
    error: str | None


NORMALIZATIONS = ("l2", "rms", "none")


def normalization_name(how: str | bool) -> str:
    """ "l2", "rms" or "none" (True means "l2", False "none"); anything else is a `UsageError`."""
    name = ("l2" if how else "none") if isinstance(how, bool) else how
    if name not in NORMALIZATIONS:
        raise UsageError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, not {how!r}")
    return name


def normalize_vectors(vectors: np.ndarray, how: str | bool) -> np.ndarray:
    """Rows normalised as "l2" (unit length), "rms" (unit length x sqrt(dim)) or "none"; float32."""
    how = normalization_name(how)
    if how == "none":
        return np.asarray(vectors, dtype=np.float32)
    unit = l2_normalize(vectors)
    return unit * np.float32(np.sqrt(unit.shape[-1])) if how == "rms" else unit


class FeatureExtractor:
    """Raw penultimate features of a backbone for image files, read from the cache when possible.

    The network is loaded only when some file is not in the cache; `images_run` counts the images
    that went through it.

    >>> fx = FeatureExtractor("efficientnet_lite0")                  # doctest: +SKIP
    >>> [row.vector.shape for row in fx.iter_features(["a.jpg"])]    # doctest: +SKIP
    [(1280,)]
    """

    def __init__(
        self,
        model: str = DEFAULT_CLASSIFIER,
        *,
        cache: bool | FeatureCache = True,
        run_options: RunOptions | None = None,
        image_model: ImageModel | None = None,
        backbone_digest: str | None = None,
    ):
        self.spec: ClassifierSpec = get_spec_of(model, ClassifierSpec, needed_for="features")
        self.run_options = run_options or RunOptions()
        self._image_model = image_model
        self.backbone_digest = backbone_digest
        if cache is True:
            self.cache: FeatureCache | None = FeatureCache()
        else:
            self.cache = cache or None
        self._key: tuple[str, dict[str, Any]] | None = None
        self.images_run = 0
        self.images_cached = 0

    @property
    def image_model(self) -> ImageModel:
        if self._image_model is None:
            # torch only when some photo is not in the feature cache
            from pixelsift.runtime.loaded import ImageModel

            self._image_model = ImageModel.load(self.spec.name, self.run_options)
        return self._image_model

    @property
    def embed_dim(self) -> int:
        return int(self.spec.embed_dim or self.image_model.embed_dim)

    def weights_sha256(self) -> str:
        """sha256 of the weights file the backbone loads (hashed once per file, then remembered)."""
        if self.spec.weights is None:
            return "none"
        path = weights.resolve(self.spec)
        return self.cache.file_digest(path) if self.cache else sha256_file(path)

    def key(self) -> tuple[str, dict[str, Any]]:
        """(feature key, what it stands for): everything that changes the numbers."""
        if self._key is None:
            if self._image_model is not None:
                precision = self._image_model.runner.precision
            else:
                from pixelsift.runtime.device import choose_precision, resolve_device  # imports torch

                device = resolve_device(self.run_options.device)
                precision = choose_precision(self.run_options.precision, device)[0]
            description = {
                "model": self.spec.name,
                "weights_sha256": self.weights_sha256(),
                "preprocessing": self.spec.preprocessing.to_dict(),
                "precision": precision,
                "engine": self.run_options.engine,
                "backbone_state": self.backbone_digest,
            }
            self._key = (feature_key(description), description)
        return self._key

    def iter_features(
        self,
        sources: Iterable[str | os.PathLike[str] | ImageError],
        progress: bool | None = False,
        total: int | None = None,
        desc: str = "features",
        decode: Decoder | None = None,
    ) -> Iterator[FeatureRow]:
        """One `FeatureRow` per input, in input order, failures included (never raised).

        `decode` replaces the model's own decoding (e.g. augmentation); such features are never cached.
        """
        use_cache = self.cache is not None and decode is None
        with progress_bar(total=total, desc=desc, enabled=progress) as bar:
            chunk: list[str | ImageError] = []
            for source in sources:
                chunk.append(source if isinstance(source, ImageError) else os.fspath(source))
                if len(chunk) == CHUNK:
                    yield from self._run_chunk(chunk, use_cache, bar, decode)
                    chunk = []
            if chunk:
                yield from self._run_chunk(chunk, use_cache, bar, decode)

    def _run_chunk(
        self, chunk: list[str | ImageError], use_cache: bool, bar: Any, decode: Decoder | None
    ) -> Iterator[FeatureRow]:
        rows: list[FeatureRow | None] = [None] * len(chunk)
        digests: list[str | None] = [None] * len(chunk)
        found: dict[str, np.ndarray] = {}
        if use_cache:
            assert self.cache is not None
            paths = [(i, s) for i, s in enumerate(chunk) if not isinstance(s, ImageError)]
            for (i, _), hashed in zip(paths, self.cache.file_digests([s for _, s in paths]), strict=True):
                if isinstance(hashed, ImageError):
                    rows[i] = FeatureRow(hashed.path, None, hashed.reason)
                else:
                    digests[i] = hashed
            key, _ = self.key()
            found = self.cache.get(key, [d for d in digests if d is not None])
        misses: list[int] = []
        for i, source in enumerate(chunk):
            if isinstance(source, ImageError):
                rows[i] = FeatureRow(source.path, None, source.reason)
            elif rows[i] is None:
                digest = digests[i]
                if digest is not None and digest in found:
                    rows[i] = FeatureRow(source, found[digest], None)
                    self.images_cached += 1
                else:
                    misses.append(i)
        bar.update(len(chunk) - len(misses))
        if misses:
            new: list[tuple[str, np.ndarray]] = []
            outputs = self.image_model.iter_outputs(
                [chunk[i] for i in misses],
                decode=decode,
            )
            for i, (item, features, _) in zip(misses, outputs, strict=True):
                bar.update(1)
                if features is None:
                    rows[i] = FeatureRow(item.path, None, item.error)
                    continue
                vector = np.array(features, dtype=np.float32)  # a copy: the batch array is reused
                rows[i] = FeatureRow(item.path, vector, None)
                self.images_run += 1
                digest = digests[i]
                if use_cache and digest is not None:
                    new.append((digest, vector))
            if new:
                assert self.cache is not None
                key, description = self.key()
                self.cache.put(key, description, new)
        for row in rows:
            assert row is not None
            yield row


def _as_path_list(X: Any) -> list[str]:
    """Image paths from what a scikit-learn step may receive: a list, array, Series or 1-column frame."""
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"Embedder expects a 1-d list of image paths, got an array of shape {arr.shape}")
    return [os.fspath(p) for p in arr]


class Embedder(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer from image paths to feature vectors (float32).

    Works inside `Pipeline`, `GridSearchCV`, `cross_val_score` and `clone`; vectors come through the
    feature cache, so cross-validation folds never run the network twice on a photo.

    Parameters: `model` (registry name), `normalize` ("rms": unit length x sqrt(dim), which suits
    scikit-learn's default regularisation; "l2": unit length; "none": raw), `cache` (on-disk feature
    cache), `on_error` ("raise": an unreadable image raises `EmbeddingError` listing every bad path;
    "nan": its row is NaN and a warning names it), and the runner options `batch_size`, `device`,
    `precision`, `threads`, `engine`, `workers`, `progress`.

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> pipe = make_pipeline(Embedder(), LogisticRegression())       # doctest: +SKIP
    >>> pipe.fit(train_paths, train_labels).score(valid_paths, valid_labels)   # doctest: +SKIP
    0.97
    """

    def __init__(
        self,
        model: str = DEFAULT_CLASSIFIER,
        normalize: str = "rms",
        cache: bool = True,
        on_error: str = "raise",
        batch_size: int | None = None,
        device: str | None = None,
        precision: str | None = None,
        threads: int | None = None,
        engine: str = "torch",
        workers: int | None = None,
        progress: bool = False,
    ):
        self.model = model
        self.normalize = normalize
        self.cache = cache
        self.on_error = on_error
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.threads = threads
        self.engine = engine
        self.workers = workers
        self.progress = progress

    def _extractor(self) -> FeatureExtractor:
        # scikit-learn's estimator rules keep each option a parameter; they travel on as one RunOptions
        run_options = RunOptions(
            device=self.device,
            precision=self.precision,
            engine=self.engine,
            threads=self.threads,
            batch_size=self.batch_size,
            workers=self.workers,
        )
        return FeatureExtractor(self.model, cache=self.cache, run_options=run_options)

    def fit(self, X: Any = None, y: Any = None) -> Embedder:
        """Nothing to learn: checks the parameters and records the output width `n_features_out_`."""
        if self.on_error not in ("raise", "nan"):
            raise ValueError(f"on_error must be 'raise' or 'nan', not {self.on_error!r}")
        normalization_name(self.normalize)  # a bad choice fails here, not in the middle of a pipeline
        self.n_features_out_ = self._extractor().embed_dim
        return self

    def transform(self, X: Any) -> np.ndarray:
        """(n_images, n_features_out_) float32 vectors, in the order of `X`."""
        check_is_fitted(self, "n_features_out_")
        paths = _as_path_list(X)
        out = np.full((len(paths), self.n_features_out_), np.nan, dtype=np.float32)
        failures: list[tuple[str, str]] = []
        rows = self._extractor().iter_features(paths, progress=self.progress, total=len(paths), desc="embed")
        for i, row in enumerate(rows):
            if row.vector is None:
                failures.append((row.path, row.error or "unreadable"))
            else:
                out[i] = row.vector
        if failures and self.on_error == "raise":
            raise EmbeddingError(failures)
        if failures:
            warnings.warn(
                f"{len(failures)} image(s) could not be read and have NaN rows: "
                + "; ".join(f"{p}: {r}" for p, r in failures[:5]),
                stacklevel=2,
            )
        ok = ~np.isnan(out).any(axis=1)
        out[ok] = normalize_vectors(out[ok], self.normalize)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """`f0` ... `f{n-1}`: the same column names `pixelsift embed` writes."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray(feature_names(self.n_features_out_), dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []  # strings in, float32 out
        return tags


def feature_names(dim: int) -> list[str]:
    return [f"f{i}" for i in range(dim)]


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

        meta = pd.DataFrame({"path": self.paths, "split": self.splits, "label": self.labels})
        values = pd.DataFrame(self.vectors, columns=feature_names(self.shape[1]))
        return pd.concat([meta, values], axis=1)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as Parquet (`.parquet`, needs pyarrow), `.npz` or `.csv`, chosen by the extension."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in (".parquet", ".npz", ".csv"):
            raise UsageError(f"{target}: unknown output format; use a .parquet, .npz or .csv file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        try:
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
                self.to_pandas().to_csv(tmp, index=False)
            else:
                _write_parquet(self, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target


def _write_parquet(embeddings: Embeddings, path: Path) -> None:
    pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Writing Parquet files")
    import pyarrow as pa  # imported with pyarrow.parquet

    columns: dict[str, Any] = {
        "path": pa.array(embeddings.paths, pa.string()),
        "split": pa.array(embeddings.splits, pa.string()),
        "label": pa.array(embeddings.labels, pa.string()),
    }
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
