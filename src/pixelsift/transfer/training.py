"""Transfer learning by feature extraction: a scikit-learn classifier on a pretrained network's features.

>>> result = pixelsift.train("birds/", classifier="logreg")         # doctest: +SKIP
>>> result.train_score, result.valid_score                          # doctest: +SKIP
(1.0, 0.971)
>>> result.model.save("birds.safetensors")                          # doctest: +SKIP
>>> model = pixelsift.load_trained("birds.safetensors")             # doctest: +SKIP
>>> model.predict(["new_bird.jpg"], top_k=2).to_pandas()            # doctest: +SKIP

Photos go through the backbone once (features are cached on disk by file content), are L2-normalised,
and a classifier is fitted on them. The fitted classifier is kept as plain arrays (`heads`), so a saved
model is one safetensors file and predicting needs no pickle. Without a `valid/` split, a stratified
hold-out of each class is the validation set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import Unpack

from pixelsift.core.arrays import l2_normalize
from pixelsift.errors import UsageError
from pixelsift.features.ensemble import EnsembleExtractor
from pixelsift.features.extractor import FeatureExtractor
from pixelsift.imaging.images import expand_inputs
from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.options import RunKwargs, RunOptions
from pixelsift.transfer.classifiers import CLASSIFIERS, encode_labels, get_classifier, search_classifier
from pixelsift.transfer.data import HOLDOUT_FRACTION, TrainingData, labelled_splits
from pixelsift.transfer.domain import DomainGate
from pixelsift.transfer.evaluation import Evaluation, wilson_interval
from pixelsift.transfer.selection import AUTO, MARGIN, BackboneChoice, choose_backbone
from pixelsift.transfer.trained import TrainedModel, load_trained, training_photo_keys

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RejectionCheck:
    """How a trained model did on a folder of photos it should not recognise (`--reject-test`)."""

    folder: str
    photos: int  # readable photos in it
    rejected: int  # of them, turned away as unlike the training photos
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rejected / self.photos if self.photos else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "photos": self.photos, "rejected": self.rejected, "rate": self.rate}


def check_rejection(
    model: TrainedModel,
    folder: str | os.PathLike[str],
    cache: bool = True,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
) -> RejectionCheck:
    """Run `model`'s backbone over `folder` (photos from outside its classes) and count how many it
    does not recognise. Unreadable photos are listed, not counted."""
    sources = list(expand_inputs([folder]))
    extractor = model.feature_extractor(cache, run_options)
    vectors, failures = [], []
    for row in extractor.iter_features(sources, progress=progress, total=len(sources), desc="reject test"):
        if row.vector is None:
            failures.append((row.path, row.error or "unreadable"))
        else:
            vectors.append(row.vector)
    if not vectors:
        raise UsageError(f"--reject-test {folder}: no readable photos in it")
    recognised = model.recognises(np.stack(vectors))
    return RejectionCheck(str(folder), len(vectors), int((~recognised).sum()), failures)


@dataclass
class TrainResult:
    """What `train` returns: the model, its training and validation evaluations, and what was skipped."""

    model: TrainedModel
    train: Evaluation
    valid: Evaluation
    data: TrainingData
    failures: list[tuple[str, str]] = field(default_factory=list)
    search: pd.DataFrame | None = None
    images_run: int = 0  # photos that went through the network (the rest came from the feature cache)
    interrupted: bool = False  # fine-tuning stopped by Ctrl-C (the model is its best epoch so far)
    history: list[dict[str, Any]] = field(default_factory=list)  # fine-tuning: one record per epoch
    reject_test: RejectionCheck | None = None  # `reject_test=FOLDER`: how many of its photos it turned away
    backbones: BackboneChoice | None = None  # `model="auto"`: the backbones compared, and the choice

    def __repr__(self) -> str:
        return (
            f"TrainResult(train_score={self.train_score:.3f}, valid_score={self.valid_score:.3f}, "
            f"model={self.model!r}, {len(self.failures)} unreadable)"
        )

    @property
    def train_score(self) -> float:
        return self.train.accuracy

    @property
    def valid_score(self) -> float:
        return self.valid.accuracy

    @property
    def valid_interval(self) -> tuple[float, float]:
        """The 95% interval around the validation score (Wilson): narrow on hundreds of photos, wide on
        a handful."""
        n = len(self.valid.paths)
        return wilson_interval(round(self.valid_score * n), n)

    def per_class(self) -> pd.DataFrame:
        return self.valid.per_class()

    def to_dict(self) -> dict[str, Any]:
        result = {
            "train_score": self.train_score,
            "valid_score": self.valid_score,
            "valid_interval": list(self.valid_interval),
            "classes": self.model.classes,
            "per_class": self.valid.per_class_dict(),
            "model": self.model.backbone,
            "classifier": self.model.classifier,
            "classifier_params": self.model.params,
            "holdout": self.data.holdout,
            "n_train": len(self.train.paths),
            "n_valid": len(self.valid.paths),
            "failures": [{"path": p, "error": e} for p, e in self.failures],
        }
        result["domain"] = self.domain_dict()
        if self.search is not None:
            result["search"] = self.search.to_dict(orient="records")
        if self.backbones is not None:
            result["backbones"] = self.backbones.to_dict()
        if self.interrupted:
            result["interrupted"] = True
        return result

    def domain_dict(self) -> dict[str, Any] | None:
        """How the model tells photos it knows from the rest, and how often it turned photos away."""
        gate = self.model.domain
        if gate is None:
            return None
        record: dict[str, Any] = {"threshold": gate.threshold, "valid_rejected": gate.valid_rejected}
        if self.reject_test is not None:
            record["reject_test"] = self.reject_test.to_dict()
        return record

    def training_metadata(self) -> dict[str, Any]:
        """What the model file records about its training."""
        return {
            "domain": self.domain_dict(),
            "root": str(self.data.dataset.root),
            "holdout": self.data.holdout,
            "n_train": len(self.train.paths),
            "n_valid": len(self.valid.paths),
            "train_score": self.train_score,
            "valid_score": self.valid_score,
            "per_class": self.valid.per_class_dict(),
            "skipped": len(self.failures),
        }


def train(
    root: str | os.PathLike[str],
    model: str = DEFAULT_CLASSIFIER,
    classifier: str = "logreg",
    params: dict[str, Any] | None = None,
    search: bool = False,
    holdout: float = HOLDOUT_FRACTION,
    seed: int = 0,
    cache: bool = True,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    reject_test: str | os.PathLike[str] | None = None,
    candidates: Sequence[str] | None = None,
    margin: float = MARGIN,
    on_backbone: Callable[[str], None] | None = None,
    **run: Unpack[RunKwargs],
) -> TrainResult:
    """Train a classifier for the classes of a data-set folder on `model`'s features.

    `model="auto"` cross-validates the classifier on each of `candidates` (default: every backbone
    whose weights are on this machine) and keeps the most accurate, or the cheapest within `margin`
    of it (`transfer.selection`; `on_backbone(line)` hears each result; `backbones` in the result).
    `classifier`: logreg | svm | knn | forest | mlp (`params` overrides its defaults). `search=True`
    cross-validates every classifier's small grid on the training split and keeps the best.
    Unreadable photos are skipped and listed in `failures`. The model learns which photos it knows
    (`transfer.domain`); `reject_test`: a folder of photos from outside its classes, to report how many
    it turns away. How the backbone runs: `run_options`, or the keywords device, precision, engine,
    threads, batch_size, workers.

    >>> r = train("birds/", classifier="svm")          # doctest: +SKIP
    >>> r.valid_score, r.per_class()                   # doctest: +SKIP
    """
    choice = get_classifier(classifier)
    options = RunOptions.of(run_options, **run)
    backbones = None
    if model == AUTO:
        backbones = choose_backbone(
            lambda name: labelled_splits(root, name, holdout, seed, cache, progress, options),
            candidates,
            choice,
            {**choice.defaults, **(params or {})},
            seed,
            margin,
            on_backbone,
        )
        splits = backbones.splits[backbones.chosen]
    else:
        splits = labelled_splits(root, model, holdout, seed, cache, progress, options)
    data, extractor, failures = splits.data, splits.extractor, splits.failures
    train_set, valid_set, classes = splits.train, splits.valid, splits.classes
    X = l2_normalize(train_set.raw)
    y = encode_labels(train_set.labels, classes)
    table = None
    if search:
        name, chosen, table = search_classifier(X, y, seed, progress=progress)
        choice = CLASSIFIERS[name]
    else:
        chosen = {**choice.defaults, **(params or {})}
    estimator = choice.build(chosen, seed, len(y), int(np.bincount(y).min()))
    estimator.fit(choice.fit_inputs(X), y)
    trained = TrainedModel(
        extractor.name,
        classes,
        choice.to_head(estimator, len(classes), X.shape[1]),
        classifier=choice.name,
        params=chosen,
        backbone_info=backbone_info(extractor),
        domain=DomainGate.fit(train_set.raw, y, valid_set.raw),
        training_photos=training_photo_keys(train_set.paths),
    )
    result = TrainResult(
        trained,
        trained.evaluate_features(train_set),
        trained.evaluate_features(valid_set),
        data,
        failures,
        table,
        sum(s.extractor.images_run for s in backbones.splits.values()) if backbones else extractor.images_run,
        backbones=backbones,
    )
    if reject_test is not None:
        result.reject_test = check_rejection(
            trained, reject_test, cache, progress, splits.extractor.run_options
        )
    trained.training = result.training_metadata()
    return result


def backbone_info(extractor: FeatureExtractor | EnsembleExtractor) -> dict[str, Any]:
    """What a model file records about its backbone: identity of the weights and preprocessing (for
    an ensemble, that of each member under `members`)."""
    if isinstance(extractor, EnsembleExtractor):
        return {
            "name": extractor.name,
            "members": [backbone_info(member) for member in extractor.members],
            "embed_dim": extractor.embed_dim,
        }
    _, description = extractor.key()
    spec = extractor.spec
    return {
        "name": spec.name,
        "weights_file": spec.weights.filename if spec.weights else None,
        "weights_sha256": description["weights_sha256"],
        "preprocessing": description["preprocessing"],
        "embed_dim": extractor.embed_dim,
        "precision": description["precision"],
    }


def evaluate(
    model: TrainedModel | str | os.PathLike[str],
    root_or_split: str | os.PathLike[str],
    split: str = "valid",
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    tta: str | None = None,
    **run: Unpack[RunKwargs],
) -> Evaluation:
    """Evaluate a trained model (or a saved model file) on labelled photos; see `TrainedModel.evaluate`
    (`tta="flip"`: each photo's probabilities averaged with its mirror image's).

    >>> pixelsift.evaluate("birds.safetensors", "birds/").accuracy     # doctest: +SKIP
    0.97
    """
    trained = model if isinstance(model, TrainedModel) else load_trained(model)
    return trained.evaluate(
        root_or_split, split=split, progress=progress, run_options=run_options, tta=tta, **run
    )
