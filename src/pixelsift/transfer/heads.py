"""Classifier heads as plain arrays: class probabilities computed in numpy, stored without pickle.

scikit-learn estimators are fitted, then converted here into the arrays that define their predictions
(coefficients, network weights, training vectors, tree nodes). A saved model holds only those arrays
and a JSON description, so loading one runs no code from the file, and a reloaded model predicts
exactly what the model predicted before it was saved (the same arrays go through the same numpy code).

Heads:
- `DenseHead`: `x @ W.T + b` layers with an activation between them, then softmax, logistic or
  per-class sigmoid calibration. Logistic regression, the MLP, the linear SVM (Platt-scaled) and the
  fine-tuned torch head are all this.
- `KnnHead`: the training vectors and their labels; distance-weighted votes of the k nearest.
- `ForestHead`: every tree's nodes in flat arrays; the mean of the trees' leaf class fractions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelsift.core.arrays import softmax
from pixelsift.errors import ModelFileError

ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
OUTPUTS = ("softmax", "logistic", "sigmoid_calibrated")


def expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _activate(h: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(h, 0.0)
    if activation == "tanh":
        return np.tanh(h)
    if activation == "logistic":
        return expit(h)
    return h


def _two_columns(p1: np.ndarray) -> np.ndarray:
    """Binary heads give P(class 1); the model returns both columns."""
    return np.stack([1.0 - p1, p1], axis=1)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise ModelFileError(f"the classifier in this model file is malformed: {what}")


@dataclass
class DenseHead:
    """Fully connected layers; `weights[i]` is (out, in) like `torch.nn.Linear`."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str = "relu"
    output: str = "softmax"
    calibration_a: np.ndarray | None = None  # sigmoid_calibrated: P_k = 1 / (1 + exp(a_k d_k + b_k))
    calibration_b: np.ndarray | None = None

    kind = "dense"

    @property
    def n_classes(self) -> int:
        out = int(self.weights[-1].shape[0])
        return 2 if out == 1 and self.output != "softmax" else out

    @property
    def n_features(self) -> int:
        return int(self.weights[0].shape[1])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        h = np.asarray(X, dtype=np.float64)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w.T.astype(np.float64) + b.astype(np.float64)
            if i < last:
                h = _activate(h, self.activation)
        if self.output == "softmax":
            return softmax(h)
        if self.output == "logistic":
            return _two_columns(expit(h[:, 0]))
        assert self.calibration_a is not None and self.calibration_b is not None
        p = expit(-(self.calibration_a * h + self.calibration_b))
        if p.shape[1] == 1:
            return _two_columns(p[:, 0])
        total = p.sum(axis=1, keepdims=True)
        uniform = np.full_like(p, 1.0 / p.shape[1])
        return np.divide(p, total, out=uniform, where=total != 0)

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        config = {
            "kind": self.kind,
            "layers": len(self.weights),
            "activation": self.activation,
            "output": self.output,
        }
        arrays = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"head.dense.{i}.weight"] = w
            arrays[f"head.dense.{i}.bias"] = b
        if self.output == "sigmoid_calibrated":
            assert self.calibration_a is not None and self.calibration_b is not None
            arrays["head.calibration.a"] = self.calibration_a
            arrays["head.calibration.b"] = self.calibration_b
        return config, arrays

    @classmethod
    def from_arrays(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> DenseHead:
        layers = config.get("layers")
        _check(isinstance(layers, int) and 1 <= layers <= 16, "bad number of dense layers")
        assert isinstance(layers, int)
        _check(config.get("activation") in ACTIVATIONS, f"unknown activation {config.get('activation')!r}")
        _check(config.get("output") in OUTPUTS, f"unknown output {config.get('output')!r}")
        weights: list[np.ndarray] = []
        biases: list[np.ndarray] = []
        for i in range(layers):
            w, b = arrays.get(f"head.dense.{i}.weight"), arrays.get(f"head.dense.{i}.bias")
            _check(w is not None and b is not None, f"dense layer {i} is missing")
            assert w is not None and b is not None
            _check(
                w.ndim == 2 and b.shape == (w.shape[0],), f"dense layer {i} has shapes {w.shape}, {b.shape}"
            )
            if weights:
                _check(w.shape[1] == weights[-1].shape[0], f"dense layer {i} does not fit the layer before")
            weights.append(w)
            biases.append(b)
        a = b2 = None
        if config["output"] == "sigmoid_calibrated":
            a, b2 = arrays.get("head.calibration.a"), arrays.get("head.calibration.b")
            out = weights[-1].shape[0]
            _check(
                a is not None and b2 is not None and a.shape == (out,) and b2.shape == (out,),
                "bad calibration",
            )
        if config["output"] == "logistic":
            _check(weights[-1].shape[0] == 1, "a logistic output has one unit")
        return cls(weights, biases, config["activation"], config["output"], a, b2)


@dataclass
class KnnHead:
    """k nearest training vectors (Euclidean), votes weighted by 1/distance or uniform."""

    vectors: np.ndarray  # (n_train, n_features) float32
    labels: np.ndarray  # (n_train,) int64 class indices
    n_neighbors: int
    class_count: int
    weighting: str = "distance"

    kind = "knn"

    @property
    def n_classes(self) -> int:
        return self.class_count

    @property
    def n_features(self) -> int:
        return int(self.vectors.shape[1])

    def predict_proba(self, X: np.ndarray, chunk: int = 1024) -> np.ndarray:
        train = self.vectors.astype(np.float64)
        train_sq = (train**2).sum(axis=1)
        k = min(self.n_neighbors, len(train))
        out = np.zeros((len(X), self.n_classes), dtype=np.float64)
        for start in range(0, len(X), chunk):
            q = np.asarray(X[start : start + chunk], dtype=np.float64)
            d2 = (q**2).sum(axis=1)[:, None] + train_sq[None, :] - 2.0 * q @ train.T
            dist = np.sqrt(np.maximum(d2, 0.0))
            nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
            near_dist = np.take_along_axis(dist, nearest, axis=1)
            if self.weighting == "distance":
                with np.errstate(divide="ignore"):
                    w = 1.0 / near_dist
                exact = np.isinf(w)
                rows = exact.any(axis=1)
                w[rows] = exact[rows]  # a query equal to training vectors: only those vote
            else:
                w = np.ones_like(near_dist)
            votes = np.zeros((len(q), self.n_classes))
            np.add.at(votes, (np.arange(len(q))[:, None], self.labels[nearest]), w)
            total = votes.sum(axis=1, keepdims=True)
            total[total == 0] = 1.0
            out[start : start + len(q)] = votes / total
        return out

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        config = {
            "kind": self.kind,
            "n_neighbors": self.n_neighbors,
            "n_classes": self.class_count,
            "weighting": self.weighting,
        }
        return config, {"head.knn.vectors": self.vectors, "head.knn.labels": self.labels}

    @classmethod
    def from_arrays(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> KnnHead:
        vectors, labels = arrays.get("head.knn.vectors"), arrays.get("head.knn.labels")
        n_classes, k = config.get("n_classes"), config.get("n_neighbors")
        _check(vectors is not None and labels is not None, "the nearest-neighbour vectors are missing")
        assert vectors is not None and labels is not None
        _check(vectors.ndim == 2 and labels.shape == (len(vectors),), "vectors and labels do not match")
        _check(len(vectors) >= 1 and vectors.shape[1] >= 1, "no nearest-neighbour vectors")
        _check(vectors.dtype.kind == "f", "the nearest-neighbour vectors are not numbers")
        _check(isinstance(n_classes, int) and n_classes >= 2, "bad class count")
        _check(isinstance(k, int) and k >= 1, "bad neighbour count")
        _check(config.get("weighting") in ("distance", "uniform"), "unknown weighting")
        _check(
            labels.dtype.kind in "iu" and bool(np.all((labels >= 0) & (labels < n_classes))),
            "labels out of range",
        )
        return cls(vectors, labels.astype(np.int64), k, n_classes, config["weighting"])  # type: ignore[arg-type]


@dataclass
class ForestHead:
    """Decision trees in flat arrays. Node i goes left when x[feature[i]] <= threshold[i]; leaves have
    left[i] == -1 and `value[i]` is their class fractions. Children always come after their parent."""

    left: np.ndarray  # int64
    right: np.ndarray  # int64
    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64
    value: np.ndarray  # (n_nodes, n_classes) float64, rows sum to 1 at leaves
    roots: np.ndarray  # (n_trees,) int64
    feature_count: int

    kind = "forest"

    @property
    def n_classes(self) -> int:
        return int(self.value.shape[1])

    @property
    def n_features(self) -> int:
        return self.feature_count

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        # scikit-learn compares float32 features with float64 thresholds: the same here.
        x = np.asarray(X, dtype=np.float32)
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        # Children come after their parents (checked on load), so a walk takes at most n_nodes steps: the
        # bound holds even for arrays that did not come through `from_arrays`.
        for _ in range(len(self.left) + 1):
            inner = self.left[node] != -1
            if not inner.any():
                return self.value[node].mean(axis=1)
            goes_left = x[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(inner, np.where(goes_left, self.left[node], self.right[node]), node)
        raise ModelFileError("the classifier in this model file is malformed: a tree walk does not end")

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        config = {"kind": self.kind, "n_trees": len(self.roots), "n_features": self.feature_count}
        arrays = {
            "head.forest.left": self.left,
            "head.forest.right": self.right,
            "head.forest.feature": self.feature,
            "head.forest.threshold": self.threshold,
            "head.forest.value": self.value,
            "head.forest.roots": self.roots,
        }
        return config, arrays

    @classmethod
    def from_arrays(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> ForestHead:
        names = ("left", "right", "feature", "threshold", "value", "roots")
        got = {n: arrays.get(f"head.forest.{n}") for n in names}
        _check(all(v is not None for v in got.values()), "tree arrays are missing")
        left, right, feature, threshold, value, roots = (got[n] for n in names)
        assert left is not None and right is not None and feature is not None
        assert threshold is not None and value is not None and roots is not None
        n_nodes = len(left)
        n_features = config.get("n_features")
        _check(isinstance(n_features, int) and n_features >= 1, "bad feature count")
        assert isinstance(n_features, int)
        _check(
            right.shape == feature.shape == threshold.shape == (n_nodes,) and value.shape[:1] == (n_nodes,),
            "tree arrays differ in length",
        )
        _check(value.ndim == 2 and value.shape[1] >= 2 and roots.ndim == 1 and len(roots) >= 1, "bad shapes")
        _check(
            all(a.dtype.kind in "iu" for a in (left, right, feature, roots)), "tree indices are not integers"
        )
        _check(value.dtype.kind == "f" and threshold.dtype.kind == "f", "tree values are not numbers")
        idx = np.arange(n_nodes)
        inner = left != -1
        leaves = value[~inner]
        # a leaf's class fractions are probabilities: each in [0, 1], summing to 1
        _check(
            bool(np.all((leaves >= 0) & (leaves <= 1)) and np.allclose(leaves.sum(axis=1), 1, atol=1e-3)),
            "leaf class fractions are not probabilities",
        )
        # Children after parents (so every walk ends) and inside the arrays; features in range.
        _check(bool(np.all((left[inner] > idx[inner]) & (left[inner] < n_nodes))), "bad left children")
        _check(bool(np.all((right[inner] > idx[inner]) & (right[inner] < n_nodes))), "bad right children")
        _check(bool(np.all(right[~inner] == -1)), "leaves with children")
        _check(bool(np.all((feature[inner] >= 0) & (feature[inner] < n_features))), "features out of range")
        _check(bool(np.all((roots >= 0) & (roots < n_nodes))), "roots out of range")
        as_int = [a.astype(np.int64) for a in (left, right, feature, roots)]
        return cls(
            as_int[0],
            as_int[1],
            as_int[2],
            threshold.astype(np.float64),
            value.astype(np.float64),
            as_int[3],
            n_features,
        )


Head = DenseHead | KnnHead | ForestHead
_HEADS: dict[str, Any] = {"dense": DenseHead, "knn": KnnHead, "forest": ForestHead}


def head_from_arrays(config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Head:
    kind = config.get("kind")
    _check(kind in _HEADS, f"unknown head kind {kind!r}")
    head: Head = _HEADS[str(kind)].from_arrays(config, arrays)
    return head


# -- from fitted scikit-learn estimators ------------------------------------------------------------


def head_from_sklearn(estimator: Any, n_classes: int) -> Head:
    """The arrays of a fitted estimator (trained on labels 0..n_classes-1) as a numpy head."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    if hasattr(estimator, "classes_") and not np.array_equal(estimator.classes_, np.arange(n_classes)):
        raise ValueError(f"expected classes 0..{n_classes - 1}, the estimator has {estimator.classes_}")
    if isinstance(estimator, LogisticRegression):
        output = "logistic" if n_classes == 2 else "softmax"
        return DenseHead([estimator.coef_.copy()], [estimator.intercept_.copy()], output=output)
    if isinstance(estimator, MLPClassifier):
        weights = [w.T.copy() for w in estimator.coefs_]
        biases = [b.copy() for b in estimator.intercepts_]
        output = "logistic" if estimator.out_activation_ == "logistic" else "softmax"
        return DenseHead(weights, biases, activation=estimator.activation, output=output)
    if isinstance(estimator, CalibratedClassifierCV):
        if len(estimator.calibrated_classifiers_) != 1 or estimator.method != "sigmoid":
            raise ValueError("only CalibratedClassifierCV(ensemble=False, method='sigmoid') converts")
        calibrated = estimator.calibrated_classifiers_[0]
        linear = calibrated.estimator
        a = np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64)
        b = np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64)
        return DenseHead(
            [np.atleast_2d(linear.coef_).copy()],
            [np.atleast_1d(linear.intercept_).copy()],
            output="sigmoid_calibrated",
            calibration_a=a,
            calibration_b=b,
        )
    if isinstance(estimator, KNeighborsClassifier):
        if estimator.metric not in ("minkowski", "euclidean") or (
            estimator.metric == "minkowski" and estimator.p != 2
        ):
            raise ValueError("only Euclidean nearest neighbours convert")
        return KnnHead(
            np.asarray(estimator._fit_X, dtype=np.float32).copy(),
            np.asarray(estimator._y, dtype=np.int64).copy(),
            int(estimator.n_neighbors),
            n_classes,
            estimator.weights,
        )
    if isinstance(estimator, RandomForestClassifier):
        return _forest_head(estimator, n_classes)
    raise TypeError(f"no numpy head for {type(estimator).__name__}")


def _forest_head(forest: Any, n_classes: int) -> ForestHead:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature", "threshold", "value")}
    roots = []
    offset = 0
    for tree in forest.estimators_:
        t = tree.tree_
        inner = t.children_left != -1
        shift = np.where(inner, offset, 0)
        parts["left"].append(t.children_left.astype(np.int64) + shift)
        parts["right"].append(t.children_right.astype(np.int64) + shift)
        parts["feature"].append(np.where(inner, t.feature, 0).astype(np.int64))
        parts["threshold"].append(t.threshold.astype(np.float64))
        value = t.value[:, 0, :].astype(np.float64)
        value /= np.maximum(value.sum(axis=1, keepdims=True), 1e-300)
        parts["value"].append(value)
        roots.append(offset)
        offset += t.node_count
    stacked = {k: np.concatenate(v) for k, v in parts.items()}
    return ForestHead(
        stacked["left"],
        stacked["right"],
        stacked["feature"],
        stacked["threshold"],
        stacked["value"],
        np.asarray(roots, dtype=np.int64),
        int(forest.n_features_in_),
    )
