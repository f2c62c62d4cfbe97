"""The generated data set the transfer-learning tutorial teaches with: hard enough to show mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pixelsift.core.arrays import l2_normalize
from pixelsift.imaging.generated import HARD_CLASSES, make_hard_dataset
from pixelsift.runtime.options import RunOptions
from pixelsift.transfer.classifiers import CLASSIFIERS, encode_labels
from pixelsift.transfer.data import labelled_splits


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hard_dataset(tmp_path_factory.mktemp("data") / "hard", train_per_class=24, valid_per_class=16)


def test_the_set_has_its_splits_classes_and_main_shapes(hard: Path) -> None:
    for split, count in (("train", 24), ("valid", 16)):
        assert sorted(p.name for p in (hard / split).iterdir()) == sorted(HARD_CLASSES)
        assert all(len(list((hard / split / c).glob("*.jpg"))) == count for c in HARD_CLASSES)
    objects = json.loads((hard / "objects.json").read_text())
    assert len(objects) == 6 * 40
    entry = objects["train/ellipse/ellipse_000.jpg"]
    x1, y1, x2, y2 = entry["box"]
    assert entry["class"] == "ellipse" and 0 <= x1 < x2 <= 192 and 0 <= y1 < y2 <= 192
    with pytest.raises(ValueError, match="two or more of circle"):
        make_hard_dataset(hard.parent / "nope", classes=("circle", "dodecahedron"))


def test_the_same_seed_writes_the_same_photos(tmp_path: Path) -> None:
    a = make_hard_dataset(
        tmp_path / "a", classes=("square", "rectangle"), train_per_class=2, valid_per_class=1
    )
    b = make_hard_dataset(
        tmp_path / "b", classes=("square", "rectangle"), train_per_class=2, valid_per_class=1
    )
    photo = Path("train/square/square_001.jpg")
    assert (a / photo).read_bytes() == (b / photo).read_bytes()


def test_the_learning_curve_rises_and_classifiers_make_real_mistakes(hard: Path) -> None:
    splits = labelled_splits(hard, "efficientnet_lite0", 0.2, 0, True, False, RunOptions())
    X, Xv = l2_normalize(splits.train.raw), l2_normalize(splits.valid.raw)
    y, yv = (encode_labels(f.labels, splits.classes) for f in (splits.train, splits.valid))

    def accuracy(per_class: int, name: str = "logreg") -> float:
        choice = CLASSIFIERS[name]
        rows = np.concatenate([np.flatnonzero(y == k)[:per_class] for k in range(len(splits.classes))])
        model = choice.build(choice.defaults, 0, len(rows), per_class)
        model.fit(choice.fit_inputs(X[rows]), y[rows])
        return float((model.predict(choice.fit_inputs(Xv)) == yv).mean())

    curve = [accuracy(n) for n in (1, 4, 24)]
    assert curve[-1] >= curve[0] + 0.15, f"more photos per class must help: {curve}"
    assert curve[-1] < 0.95, f"the set must leave mistakes to look at: {curve}"
    assert curve[-1] > 1.5 / len(splits.classes), "and still be learnable"
    knn = accuracy(24, "knn")
    assert abs(knn - curve[-1]) >= 0.03, f"classifiers differ on it: logreg {curve[-1]}, knn {knn}"
