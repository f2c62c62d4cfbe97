"""`Embedder`: a scikit-learn transformer from image paths to feature vectors, so a pretrained
network is one step of a `Pipeline` (`make_pipeline(Embedder("efficientnet_lite0"), LogisticRegression())`)
and works with `GridSearchCV`, `cross_val_score` and `clone`."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pixelsift.errors import EmbeddingError
from pixelsift.features.extractor import (
    FeatureExtractor,
    feature_names,
    normalization_name,
    normalize_vectors,
)
from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.options import RunOptions


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
