"""The scikit-learn classifiers `pixelsift train -c` offers on a backbone's features, their
`--search` grids, and the cross-validated search over them.

Each fitted classifier becomes a numpy head (`transfer.heads`), so a saved model needs no pickle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.progress import progress_bar
from pixelsift.errors import UsageError
from pixelsift.features.extractor import normalize_vectors
from pixelsift.transfer.heads import DenseHead, Head, head_from_sklearn

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ClassifierChoice:
    """One `-c` choice: its default parameters, its `--search` candidates, and how to build it."""

    name: str
    description: str
    defaults: dict[str, Any]
    grid: tuple[dict[str, Any], ...]
    build: Callable[[dict[str, Any], int, int, int], Any]  # (params, seed, n_train, smallest class)
    # Fit on L2-normalised vectors times sqrt(dim) (unit RMS per feature). On unit-length vectors
    # scikit-learn's default regularisation is about 200x too strong for 1280-d features (logistic
    # regression: 0.83 instead of 0.97 on a 6-class test set) and the MLP converges 4x slower. The
    # factor is folded into the head's first layer, so saved models take plain L2-normalised vectors.
    unit_rms: bool = False

    def fit_inputs(self, X: np.ndarray) -> np.ndarray:
        return normalize_vectors(X, "rms") if self.unit_rms else X

    def to_head(self, estimator: Any, n_classes: int, n_features: int) -> Head:
        head = head_from_sklearn(estimator, n_classes)
        if self.unit_rms:
            assert isinstance(head, DenseHead)
            head.weights[0] = head.weights[0] * np.sqrt(n_features)
        return head


def _logreg(params: dict[str, Any], seed: int, n_train: int, smallest: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=params["C"], max_iter=5000)


def _svm(params: dict[str, Any], seed: int, n_train: int, smallest: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    if smallest < 2:
        raise UsageError(
            "the svm classifier calibrates its scores by cross-validation: it needs at least 2 training "
            "images in every class"
        )
    linear = LinearSVC(C=params["C"], max_iter=20000, random_state=seed)
    return CalibratedClassifierCV(linear, method="sigmoid", cv=min(3, smallest), ensemble=False)


def _knn(params: dict[str, Any], seed: int, n_train: int, smallest: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=min(params["n_neighbors"], n_train), weights="distance")


def _forest(params: dict[str, Any], seed: int, n_train: int, smallest: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=params["n_estimators"], min_samples_leaf=params["min_samples_leaf"], random_state=seed
    )


def _mlp(params: dict[str, Any], seed: int, n_train: int, smallest: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(params["hidden"],), alpha=params["alpha"], max_iter=1000, random_state=seed
    )


CLASSIFIERS: dict[str, ClassifierChoice] = {
    c.name: c
    for c in (
        ClassifierChoice(
            "logreg",
            "logistic regression (multinomial, L2)",
            {"C": 1.0},
            tuple({"C": c} for c in (0.1, 1.0, 10.0, 100.0)),
            _logreg,
            unit_rms=True,
        ),
        ClassifierChoice(
            "svm",
            "linear SVM, scores calibrated by Platt scaling",
            {"C": 1.0},
            tuple({"C": c} for c in (0.01, 0.1, 1.0, 10.0)),
            _svm,
            unit_rms=True,
        ),
        ClassifierChoice(
            "knn",
            "k nearest neighbours, distance-weighted votes",
            {"n_neighbors": 5},
            tuple({"n_neighbors": k} for k in (1, 3, 5, 9)),
            _knn,
        ),
        ClassifierChoice(
            "forest",
            "random forest",
            {"n_estimators": 200, "min_samples_leaf": 1},
            tuple({"n_estimators": 200, "min_samples_leaf": n} for n in (1, 3)),
            _forest,
        ),
        ClassifierChoice(
            "mlp",
            "one-hidden-layer neural network",
            {"hidden": 256, "alpha": 1e-4},
            tuple({"hidden": 256, "alpha": a} for a in (1e-4, 1e-3, 1e-2)),
            _mlp,
            unit_rms=True,
        ),
    )
}


def get_classifier(name: str) -> ClassifierChoice:
    if name not in CLASSIFIERS:
        raise UsageError(f"unknown classifier {name!r}; use one of {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[name]


def encode_labels(labels: Sequence[str], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[label] for label in labels], dtype=np.int64)


def fold_sizes(n_train: int, smallest: int, n_splits: int) -> tuple[int, int]:
    """(photos, photos of the smallest class) one cross-validation fold trains on: each loses up to
    ceil(n / n_splits) photos to testing. A classifier is built for these sizes (k of k-NN, SVM folds)."""
    return n_train - -(-n_train // n_splits), smallest - -(-smallest // n_splits)


def search_classifier(
    X: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5, progress: bool | None = False
) -> tuple[str, dict[str, Any], pd.DataFrame]:
    """Cross-validate every classifier's candidate parameters on (X, y); the best (first on ties).
    `progress`: a bar over the candidates, naming the one being cross-validated.

    Returns (classifier name, parameters, table of candidates with their mean CV accuracy).
    """
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise UsageError("--search cross-validates: it needs at least 2 training images in every class")
    cv = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    fold_train, fold_smallest = fold_sizes(len(y), smallest, cv.n_splits)
    rows = []
    candidates = [(choice, params) for choice in CLASSIFIERS.values() for params in choice.grid]
    with progress_bar(total=len(candidates), desc="--search", enabled=progress, unit="candidate") as bar:
        for choice, params in candidates:
            bar.set_postfix_str(f"{choice.name} {params}", refresh=False)
            row: dict[str, Any] = {"classifier": choice.name, "params": params}
            try:
                estimator = choice.build(params, seed, fold_train, fold_smallest)
            except UsageError as exc:  # e.g. too few photos per class to calibrate an SVM in a fold
                rows.append({**row, "cv_score": float("nan"), "cv_std": float("nan"), "note": str(exc)})
                bar.update(1)
                continue
            scores = cross_val_score(estimator, choice.fit_inputs(X), y, cv=cv, scoring="accuracy")
            rows.append({**row, "cv_score": float(scores.mean()), "cv_std": float(scores.std()), "note": ""})
            bar.update(1)
    best = int(np.nanargmax([r["cv_score"] for r in rows]))
    return rows[best]["classifier"], dict(rows[best]["params"]), pd.DataFrame(rows)
