"""`-m auto`'s decision: cross-validated accuracy first, cost within the margin (no network runs here)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pixelsift.core.arrays import l2_normalize
from pixelsift.errors import UsageError
from pixelsift.transfer import selection
from pixelsift.transfer.classifiers import CLASSIFIERS
from pixelsift.transfer.data import LabelledFeatures
from pixelsift.transfer.selection import BackboneScore, choose_backbone, cross_validate, decide

CLASSES = ["a", "b", "c"]


def _features(separable: bool, seed: int = 0, per_class: int = 20, dim: int = 64) -> LabelledFeatures:
    rng = np.random.default_rng(seed)
    labels = [c for c in CLASSES for _ in range(per_class)]
    centres = rng.normal(0, 1, (len(CLASSES), dim)) * (4.0 if separable else 0.0)
    raw = np.stack([centres[CLASSES.index(c)] + rng.normal(0, 1, dim) for c in labels]).astype(np.float32)
    return LabelledFeatures([f"{i}.jpg" for i in range(len(labels))], labels, raw)


def test_cross_validation_tells_informative_features_from_noise() -> None:
    logreg = CLASSIFIERS["logreg"]
    good = cross_validate(_features(True), CLASSES, logreg, logreg.defaults)
    noise = cross_validate(_features(False), CLASSES, logreg, logreg.defaults)
    assert len(good) == 5 * 3, "3 repeats of 5 folds"
    assert good.mean() > 0.95 and noise.mean() < 0.6


def test_cross_validation_needs_two_photos_in_every_class() -> None:
    few = _features(True, per_class=1)
    with pytest.raises(UsageError, match="at least 2 training photos in every class"):
        cross_validate(few, CLASSES, CLASSIFIERS["logreg"], {"C": 1.0})


def _score(name: str, cv: float, ms: float) -> BackboneScore:
    return BackboneScore(name, cv, 0.01, ms, 1280)


def test_the_most_accurate_backbone_wins_when_no_cheaper_one_is_close() -> None:
    chosen, reason = decide([_score("small", 0.90, 10), _score("big", 0.93, 40)], margin=0.01)
    assert chosen.backbone == "big" and "best cross-validated accuracy" in reason


def test_a_cheaper_backbone_within_the_margin_wins_and_the_reason_says_so() -> None:
    scores = [_score("small", 0.925, 10), _score("mid", 0.928, 20), _score("big", 0.93, 40)]
    chosen, reason = decide(scores, margin=0.01)
    assert chosen.backbone == "small"
    assert "within 0.010 of big" in reason and "10.0 ms a photo against 40.0" in reason
    assert decide(scores, margin=0.0)[0].backbone == "big", "margin 0: accuracy alone"


def test_choose_backbone_keeps_the_good_candidate_over_a_bad_cheap_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    splits = {
        "good": SimpleNamespace(train=_features(True), classes=CLASSES, cost=30.0),
        "bad": SimpleNamespace(train=_features(False, seed=1), classes=CLASSES, cost=5.0),
    }
    monkeypatch.setattr(selection, "cost_per_photo", lambda found: found.cost)
    heard: list[str] = []
    logreg = CLASSIFIERS["logreg"]
    choice = choose_backbone(
        splits.__getitem__, ["bad", "good"], logreg, logreg.defaults, log=heard.append, ensembles=False
    )
    assert choice.chosen == "good"
    assert [s.backbone for s in choice.scores] == ["bad", "good"] and [s.chosen for s in choice.scores] == [
        False,
        True,
    ]
    assert len(heard) == 2 and heard[0].startswith("bad: cross-validated accuracy")
    record: dict[str, Any] = choice.to_dict()
    assert record["chosen"] == "good" and record["cv"] == "3x5-fold" and len(record["candidates"]) == 2
    # with a margin wide enough, the cheap one is taken: the rule is the margin, not the names
    assert (
        choose_backbone(
            splits.__getitem__, ["bad", "good"], logreg, logreg.defaults, margin=1.0, ensembles=False
        ).chosen
        == "bad"
    )


def test_no_candidates_and_a_bad_margin_are_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    logreg = CLASSIFIERS["logreg"]
    monkeypatch.setattr(selection, "offline_backbones", lambda: [])
    with pytest.raises(UsageError, match="no backbone whose weights are on this machine"):
        choose_backbone(lambda name: None, None, logreg, logreg.defaults)  # type: ignore[arg-type,return-value]
    with pytest.raises(UsageError, match="margin must be between 0 and 1"):
        choose_backbone(lambda name: None, ["x"], logreg, logreg.defaults, margin=-0.5)  # type: ignore[arg-type,return-value]


def test_offline_backbones_are_the_classifiers_with_weights_here() -> None:
    found = selection.offline_backbones()
    assert "efficientnet_lite0" in found
    assert "resnet50" not in found, "torchvision weights are not in the test's empty cache"


def test_an_ensemble_is_chosen_when_its_members_see_different_things(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backbone "rows" tells classes 0-1 from 2-3, "cols" tells 0-2 from 1-3: alone each gets half,
    side by side they tell all four apart."""
    rng = np.random.default_rng(0)
    labels = [c for c in "wxyz" for _ in range(20)]
    rows_bit = np.array([0 if c in "wx" else 1 for c in labels], np.float32)
    cols_bit = np.array([0 if c in "wy" else 1 for c in labels], np.float32)

    def backbone(bit: np.ndarray) -> np.ndarray:
        return (np.outer(bit * 2 - 1, np.ones(16)) * 3 + rng.normal(0, 1, (len(labels), 16))).astype(
            np.float32
        )

    raw = {"rows": backbone(rows_bit), "cols": backbone(cols_bit)}
    paths = [f"{i}.jpg" for i in range(len(labels))]
    asked: list[str] = []

    def load(name: str) -> SimpleNamespace:
        asked.append(name)
        parts = [l2_normalize(raw[n]) for n in name.split("+")]
        return SimpleNamespace(
            train=LabelledFeatures(paths, labels, np.concatenate(parts, 1)), classes=list("wxyz")
        )

    monkeypatch.setattr(selection, "cost_per_photo", lambda found: 5.0)
    logreg = CLASSIFIERS["logreg"]
    choice = choose_backbone(load, ["rows", "cols"], logreg, logreg.defaults)
    assert asked == ["rows", "cols", "rows+cols"] or asked == ["rows", "cols", "cols+rows"]
    scores = {s.backbone: s for s in choice.scores}
    assert choice.chosen in ("rows+cols", "cols+rows")
    assert scores[choice.chosen].cv_score > 0.95 > 0.6 > max(scores["rows"].cv_score, scores["cols"].cv_score)
    assert scores[choice.chosen].ms_per_photo == 10.0, "an ensemble costs what its members cost together"
