"""What a trained model knows it does not know: a photo unlike anything it was trained on gets no label.

A classifier trained on seven dishes gives every photo one of them, street scenes included. The gate
keeps up to `MAX_EXAMPLES` of the training photos' features (L2-normalised, float16) and measures a
photo's cosine distance to the nearest of them; a photo farther than the threshold is "unknown". The
threshold is the `QUANTILE` of the validation photos' own distances (times `MARGIN`), so about 1% of
photos like the validation split are turned away and photos from elsewhere are, when their features
are farther than any validation photo's. It is stored in the model file (safetensors + JSON), and
`pixelsift train` reports the rejection rate on the validation split and, with `--reject-test`, on a
folder of photos the model should not recognise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelsift.core.arrays import l2_normalize
from pixelsift.errors import ModelFileError

MAX_EXAMPLES = 4096  # training features kept (spread over the classes): 10 MB at 1280-d float16
QUANTILE = 0.99
MARGIN = 1.05
_BLOCK = 2048


def _sample(features: np.ndarray, labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """At most `limit` rows, the same share from every class."""
    if len(features) <= limit:
        return features
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = max(1, limit // len(classes))
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    return features[np.sort(np.concatenate(keep))]


@dataclass
class DomainGate:
    """Accepts photos whose features are near the training photos' (see the module docstring)."""

    examples: np.ndarray  # (M, D) unit vectors, float16
    threshold: float  # cosine distance
    valid_rejected: float | None = None  # share of the validation photos it turned away

    @classmethod
    def fit(
        cls,
        train_raw: np.ndarray,
        train_labels: np.ndarray,
        valid_raw: np.ndarray,
    ) -> DomainGate | None:
        """The gate of a model trained on `train_raw`, calibrated on `valid_raw` (raw backbone features).
        None when there is nothing to calibrate on."""
        if len(train_raw) < 2:
            return None
        examples = _sample(
            l2_normalize(np.asarray(train_raw, np.float32)), np.asarray(train_labels), MAX_EXAMPLES
        )
        gate = cls(examples.astype(np.float16), 0.0)
        # without validation photos: each training photo's distance to the others
        distances = gate.distances(valid_raw) if len(valid_raw) else _leave_one_out(examples)
        gate.threshold = float(np.quantile(distances, QUANTILE) * MARGIN)
        if len(valid_raw):
            gate.valid_rejected = float(np.mean(distances > gate.threshold))
        return gate

    def distances(self, raw: np.ndarray) -> np.ndarray:
        """Cosine distance of each row of raw features to the nearest training example (features are
        compared by direction, whatever normalisation the classifier uses)."""
        x = l2_normalize(np.asarray(raw, np.float32))
        examples = self.examples.astype(np.float32)
        best = np.full(len(x), -1.0, np.float32)
        for start in range(0, len(examples), _BLOCK):
            block = examples[start : start + _BLOCK]
            best = np.maximum(best, (x @ block.T).max(axis=1) if len(x) else best)
        return 1.0 - best

    def accepts(self, raw: np.ndarray) -> np.ndarray:
        """True for the photos that resemble the training data."""
        return self.distances(raw) <= self.threshold

    # -- the model file --
    def to_metadata(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        record = {
            "method": "nearest training example, cosine distance",
            "threshold": self.threshold,
            "quantile": QUANTILE,
            "margin": MARGIN,
            "examples": len(self.examples),
            "valid_rejected": self.valid_rejected,
        }
        return record, {"domain.examples": np.ascontiguousarray(self.examples)}

    @classmethod
    def from_metadata(
        cls, record: Any, tensors: dict[str, np.ndarray], path: object, n_features: int | None = None
    ) -> DomainGate | None:
        """The gate a model file describes; `n_features`: what its backbone gives (the examples' width)."""
        if record is None:
            return None  # a model file from before the gate: it labels every photo
        examples = tensors.get("domain.examples")
        try:
            threshold = float(record["threshold"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"{path}: its domain record is malformed; the file is damaged") from None
        if examples is None or examples.ndim != 2 or len(examples) < 1 or not np.isfinite(threshold):
            raise ModelFileError(f"{path}: its domain examples are missing; the file is damaged")
        if examples.dtype.kind != "f" or (n_features is not None and examples.shape[1] != n_features):
            raise ModelFileError(
                f"{path}: its domain examples have {examples.shape[1]} features, its backbone gives "
                f"{n_features}; the file is damaged"
            )
        rejected = record.get("valid_rejected")
        if rejected is not None and not (isinstance(rejected, int | float) and 0 <= rejected <= 1):
            raise ModelFileError(
                f"{path}: its domain record is malformed (valid_rejected); the file is damaged"
            )
        return cls(examples.astype(np.float16), threshold, None if rejected is None else float(rejected))


def _leave_one_out(examples: np.ndarray) -> np.ndarray:
    x = examples.astype(np.float32)
    similarity = x @ x.T
    np.fill_diagonal(similarity, -1.0)
    return 1.0 - similarity.max(axis=1)
