"""`pixelsift train -m auto`: the backbone chosen by cross-validated accuracy, weighed against its cost.

Every candidate backbone (by default each classifier whose weights are on this machine, so it works
offline) embeds the training split once (features are cached per backbone, so a second run costs
nothing); the classifier asked for is cross-validated on each (repeated stratified k-fold on the
training split only: the validation photos stay unseen); and each backbone's cost per photo is
measured here, in this run (model and decode, on the engine it runs on). Ensembles of the best
candidates (`a+b`, their features side by side) are cross-validated too: their features are cached
already, so they cost only the fits, and their cost per photo is the sum of their members'. The most
accurate wins, unless a cheaper one is within `margin` of its mean accuracy: then the cheapest of those.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.arrays import l2_normalize
from pixelsift.errors import UsageError
from pixelsift.features.ensemble import SEPARATOR
from pixelsift.models import weights
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import list_models
from pixelsift.transfer.classifiers import ClassifierChoice, encode_labels, fold_sizes
from pixelsift.transfer.data import LabelledFeatures

if TYPE_CHECKING:
    import pandas as pd

    from pixelsift.transfer.data import LabelledSplits

AUTO = "auto"
MARGIN = 0.01  # one point of mean CV accuracy: closer than this, the cheaper backbone is taken
CV_FOLDS = 5
CV_REPEATS = 3
ENSEMBLE_OF_BEST = 3  # ensembles are tried among this many of the most accurate single backbones


@dataclass
class BackboneScore:
    """One candidate: its cross-validated accuracy on the training split and its cost per photo."""

    backbone: str
    cv_score: float
    cv_std: float
    ms_per_photo: float
    embed_dim: int
    chosen: bool = False


@dataclass
class BackboneChoice:
    """What `-m auto` compared and why it chose `chosen`."""

    chosen: str
    scores: list[BackboneScore]
    margin: float
    classifier: str
    folds: int
    repeats: int
    reason: str = ""
    splits: dict[str, LabelledSplits] = field(default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([asdict(s) for s in self.scores])

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "reason": self.reason,
            "margin": self.margin,
            "classifier": self.classifier,
            "cv": f"{self.repeats}x{self.folds}-fold",
            "candidates": [asdict(s) for s in self.scores],
        }


def offline_backbones() -> list[str]:
    """The image classifiers whose weights are on this machine (packaged, or in the weights cache)."""
    return [
        spec.name
        for spec in list_models(task="classify")
        if isinstance(spec, ClassifierSpec) and weights.weights_status(spec) != weights.MISSING
    ]


def cross_validate(
    features: LabelledFeatures,
    classes: list[str],
    choice: ClassifierChoice,
    params: dict[str, Any],
    seed: int = 0,
    folds: int = CV_FOLDS,
    repeats: int = CV_REPEATS,
) -> np.ndarray:
    """Accuracy of `choice` in each fold of a repeated stratified k-fold over `features`."""
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    y = encode_labels(features.labels, classes)
    smallest = int(np.bincount(y, minlength=len(classes)).min())
    if smallest < 2:
        raise UsageError(
            "-m auto cross-validates the backbones: it needs at least 2 training photos in every class"
        )
    n_splits = min(folds, smallest)
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=repeats, random_state=seed)
    estimator = choice.build(params, seed, *fold_sizes(len(y), smallest, n_splits))
    X = choice.fit_inputs(l2_normalize(features.raw))
    return np.asarray(cross_val_score(estimator, X, y, cv=cv, scoring="accuracy"))


def cost_per_photo(splits: LabelledSplits, seconds: float = 0.5) -> float:
    """Milliseconds one photo costs this backbone here: its network on the engine it runs on, at its
    batch size, plus decoding and preprocessing the check photos on one core."""
    from pixelsift.runtime.tuning import check_pixels, decode_cost, measure_rate  # torch: when measuring

    model = splits.extractor.image_model
    batch = check_pixels(model.preprocessing)[: max(1, min(model.batch_size, 8))]
    rate = measure_rate(model.runner, batch, streams=1, seconds=seconds)
    return 1000.0 / rate + 1000.0 * decode_cost(model.preprocessing, repeats=2)


def decide(scores: Sequence[BackboneScore], margin: float) -> tuple[BackboneScore, str]:
    """The most accurate backbone, or the cheapest of those within `margin` of it; and why."""
    best = max(scores, key=lambda s: s.cv_score)
    close = [s for s in scores if s.cv_score >= best.cv_score - margin]
    cheapest = min(close, key=lambda s: s.ms_per_photo)
    if cheapest is best:
        return best, f"{best.backbone} has the best cross-validated accuracy ({best.cv_score:.3f})"
    return cheapest, (
        f"{cheapest.backbone} ({cheapest.cv_score:.3f}) is within {margin:.3f} of {best.backbone} "
        f"({best.cv_score:.3f}) and costs {cheapest.ms_per_photo:.1f} ms a photo against "
        f"{best.ms_per_photo:.1f}"
    )


def choose_backbone(
    load_splits: Callable[[str], LabelledSplits],
    candidates: Sequence[str] | None,
    choice: ClassifierChoice,
    params: dict[str, Any],
    seed: int = 0,
    margin: float = MARGIN,
    log: Callable[[str], None] | None = None,
    ensembles: bool = True,
) -> BackboneChoice:
    """Cross-validate `choice` on each candidate's features (`load_splits(name)` gives a candidate's
    `LabelledSplits`), measure each one's cost, and choose. `candidates`: None for every backbone
    available offline (`offline_backbones`). `log(line)` hears about each candidate as it is done.
    `ensembles`: also try every ensemble of the `ENSEMBLE_OF_BEST` most accurate candidates."""
    candidates = list(candidates) if candidates else offline_backbones()
    if not candidates:
        raise UsageError(
            "-m auto found no backbone whose weights are on this machine; name one with -m, or "
            "`pixelsift models fetch NAME` first"
        )
    if not 0 <= margin <= 1:
        raise UsageError(f"the backbone margin must be between 0 and 1, not {margin}")
    scores: list[BackboneScore] = []
    splits: dict[str, LabelledSplits] = {}

    def score(name: str, members_cost: float | None = None) -> BackboneScore:
        """Cross-validate `name`; its cost is measured, or for an ensemble its members' sum."""
        started = time.perf_counter()
        found = splits[name] = load_splits(name)
        accuracy = cross_validate(found.train, found.classes, choice, params, seed)
        cost = cost_per_photo(found) if members_cost is None else members_cost
        scored = BackboneScore(
            name, float(accuracy.mean()), float(accuracy.std()), cost, int(found.train.raw.shape[1])
        )
        scores.append(scored)
        if log is not None:
            line = f"{name}: cross-validated accuracy {scored.cv_score:.3f} ± {scored.cv_std:.3f}"
            if members_cost is None:
                line += f", {cost:.1f} ms a photo ({time.perf_counter() - started:.0f} s)"
            log(line)
        return scored

    singles = [score(name) for name in dict.fromkeys(candidates)]
    if ensembles and len(singles) > 1:
        best = sorted(singles, key=lambda s: -s.cv_score)[:ENSEMBLE_OF_BEST]
        for size in range(2, len(best) + 1):
            for combo in itertools.combinations(best, size):
                # the members' features are cached: no network runs
                score(SEPARATOR.join(m.backbone for m in combo), sum(m.ms_per_photo for m in combo))
    chosen, reason = decide(scores, margin)
    chosen.chosen = True
    return BackboneChoice(chosen.backbone, scores, margin, choice.name, CV_FOLDS, CV_REPEATS, reason, splits)
