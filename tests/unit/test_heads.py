"""Numpy heads rebuilt from fitted scikit-learn estimators predict what the estimators predict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pixelsift.errors import ModelFileError
from pixelsift.transfer.classifiers import CLASSIFIERS
from pixelsift.transfer.heads import DenseHead, KnnHead, head_from_arrays


def blobs(n_classes: int, seed: int = 0, n: int = 90, dim: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (n_classes, dim))
    y = np.arange(n) % n_classes
    X = centres[y] + rng.normal(0, 1.0, (n, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # what the heads see in pixelsift: unit vectors
    return X.astype(np.float32), y


def fitted(name: str, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    choice = CLASSIFIERS[name]
    estimator = choice.build(choice.defaults, 0, len(y), int(np.bincount(y).min()))
    estimator.fit(choice.fit_inputs(X), y)
    return choice, estimator


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_head_matches_scikit_learn(name: str, n_classes: int) -> None:
    X, y = blobs(n_classes)
    Xq, _ = blobs(n_classes, seed=1)  # queries the estimator has not seen
    choice, estimator = fitted(name, X, y)
    head = choice.to_head(estimator, n_classes, X.shape[1])
    expected = estimator.predict_proba(choice.fit_inputs(Xq))
    got = head.predict_proba(Xq)
    assert got.shape == (len(Xq), n_classes)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.argmax(1), estimator.predict(choice.fit_inputs(Xq)))


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_arrays_round_trip_gives_identical_predictions(name: str) -> None:
    X, y = blobs(3)
    choice, estimator = fitted(name, X, y)
    head = choice.to_head(estimator, 3, X.shape[1])
    config, arrays = head.to_arrays()
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    rebuilt = head_from_arrays(config, {k: v.copy() for k, v in arrays.items()})
    assert type(rebuilt) is type(head)
    np.testing.assert_array_equal(rebuilt.predict_proba(X), head.predict_proba(X))


def test_knn_query_equal_to_a_training_vector_takes_its_class() -> None:
    vectors = np.eye(3, dtype=np.float32)
    head = KnnHead(vectors, np.array([0, 1, 2]), n_neighbors=3, class_count=3)
    np.testing.assert_array_equal(head.predict_proba(vectors[1:2]), [[0.0, 1.0, 0.0]])


def _forest() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    X, y = blobs(2)
    choice, estimator = fitted("forest", X, y)
    return choice.to_head(estimator, 2, X.shape[1]).to_arrays()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c, a: a["head.forest.left"].__setitem__(0, 0), "left children"),  # a loop back to the root
        (lambda c, a: a["head.forest.feature"].__setitem__(0, 10_000), "features out of range"),
        (lambda c, a: a.pop("head.forest.value"), "missing"),
        (lambda c, a: c.update(kind="pickle"), "unknown head kind"),
    ],
)
def test_malformed_forest_arrays_are_refused(damage: Any, message: str) -> None:
    config, arrays = _forest()
    damage(config, arrays)
    with pytest.raises(ModelFileError, match=message):
        head_from_arrays(config, arrays)


def test_malformed_dense_and_knn_arrays_are_refused() -> None:
    head = DenseHead([np.ones((3, 4)), np.ones((2, 5))], [np.zeros(3), np.zeros(2)])
    config, arrays = head.to_arrays()
    with pytest.raises(ModelFileError, match="does not fit the layer before"):
        head_from_arrays(config, arrays)
    knn_config, knn_arrays = KnnHead(np.eye(2, dtype=np.float32), np.array([0, 1]), 1, 2).to_arrays()
    knn_arrays["head.knn.labels"] = np.array([0, 7])
    with pytest.raises(ModelFileError, match="labels out of range"):
        head_from_arrays(knn_config, knn_arrays)
