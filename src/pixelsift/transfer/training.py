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

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import Unpack

from pixelsift.core.arrays import l2_normalize
from pixelsift.errors import ImageError, ModelFileError, UsageError, WeightsInvalidError
from pixelsift.features.cache import FeatureCache
from pixelsift.features.embed import FeatureExtractor, normalize_vectors
from pixelsift.imaging.datasets import Dataset, Sample, holdout_split, read_dataset, split_folders
from pixelsift.imaging.images import expand_inputs
from pixelsift.models import weights
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_model_spec
from pixelsift.runtime.classification import Classification, ClassificationResults, top_classes
from pixelsift.runtime.options import RunKwargs, RunOptions
from pixelsift.transfer.heads import DenseHead, Head, head_from_arrays, head_from_sklearn
from pixelsift.transfer.modelfile import read_model_file, write_model_file
from pixelsift.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from pixelsift.runtime.loaded import ImageModel


log = logging.getLogger("pixelsift")

HOLDOUT_FRACTION = 0.2


# -- the classifiers ---------------------------------------------------------------------------------


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


# -- data --------------------------------------------------------------------------------------------


@dataclass
class TrainingData:
    """Which photos train and which validate, and whether validation is a hold-out."""

    dataset: Dataset
    train: list[Sample]
    valid: list[Sample]
    holdout: bool
    holdout_fraction: float = HOLDOUT_FRACTION

    @property
    def note(self) -> str | None:
        if not self.holdout:
            return None
        return (
            f"no valid/ split in {self.dataset.root}: validating on a stratified hold-out of "
            f"{self.holdout_fraction:.0%} of each class ({len(self.valid)} images)"
        )


def training_data(
    root: str | os.PathLike[str], holdout: float = HOLDOUT_FRACTION, seed: int = 0
) -> TrainingData:
    """Train / validation samples of a data-set folder: its train/ and valid/ splits, or a hold-out."""
    dataset = read_dataset(root)
    if dataset.has_splits:
        if "train" not in dataset.splits:
            raise UsageError(f"{dataset.root}: has {', '.join(dataset.splits)}/ but no train/ folder")
        train = dataset.samples_of("train")
        if "valid" in dataset.splits:
            return TrainingData(dataset, train, dataset.samples_of("valid"), False, holdout)
    else:
        train = dataset.samples
    train, valid = holdout_split(train, holdout, seed)
    return TrainingData(dataset, train, valid, True, holdout)


@dataclass
class LabelledFeatures:
    """Raw backbone features of labelled photos (unreadable photos left out)."""

    paths: list[str]
    labels: list[str]
    raw: np.ndarray  # (n, dim) float32

    def __len__(self) -> int:
        return len(self.paths)


def extract_labelled(
    extractor: FeatureExtractor,
    samples: Sequence[Sample],
    failures: list[tuple[str, str]],
    progress: bool | None = False,
    desc: str = "features",
) -> LabelledFeatures:
    """Features of `samples`; each unreadable photo is appended to `failures` and skipped."""
    paths: list[str] = []
    labels: list[str] = []
    vectors: list[np.ndarray] = []
    rows = extractor.iter_features(
        [s.path for s in samples], progress=progress, total=len(samples), desc=desc
    )
    for sample, row in zip(samples, rows, strict=True):
        if row.vector is None:
            failures.append((row.path, row.error or "unreadable"))
            continue
        paths.append(row.path)
        labels.append(sample.label)
        vectors.append(row.vector)
    raw = np.stack(vectors) if vectors else np.zeros((0, extractor.embed_dim), np.float32)
    return LabelledFeatures(paths, labels, raw)


@dataclass
class LabelledSplits:
    """A data-set folder's train and validation features (what `train` and `finetune` start from)."""

    data: TrainingData
    extractor: FeatureExtractor
    train: LabelledFeatures
    valid: LabelledFeatures
    classes: list[str]
    failures: list[tuple[str, str]]


def labelled_splits(
    root: str | os.PathLike[str],
    model: str,
    holdout: float,
    seed: int,
    cache: bool,
    progress: bool | None,
    run_options: RunOptions,
) -> LabelledSplits:
    """Read the splits of `root` and compute (or read from the cache) the features of every photo;
    unreadable photos are listed in `failures`."""
    data = training_data(root, holdout, seed)
    extractor = FeatureExtractor(model, cache=cache, run_options=run_options)
    failures: list[tuple[str, str]] = []
    train_set = extract_labelled(extractor, data.train, failures, progress, "train features")
    valid_set = extract_labelled(extractor, data.valid, failures, progress, "valid features")
    classes = sorted(set(train_set.labels))
    if len(classes) < 2:
        raise UsageError(
            f"{data.dataset.root}: training needs readable photos of at least 2 classes, found {len(classes)}"
        )
    return LabelledSplits(data, extractor, train_set, valid_set, classes, failures)


# -- results -----------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Predictions on labelled photos: accuracy, per-class precision / recall, confusion matrix.

    Photos of a class the model does not know count as mistakes (`true` is -1 for them).
    """

    classes: list[str]
    paths: list[str]
    labels: list[str]  # true class names
    proba: np.ndarray  # (n, n_classes)
    failures: list[tuple[str, str]] = field(default_factory=list)  # unreadable photos, left out

    @property
    def true(self) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.asarray([index.get(label, -1) for label in self.labels], dtype=np.int64)

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(self.proba, axis=1) if len(self.proba) else np.zeros(0, np.int64)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.true)) if self.paths else float("nan")

    @property
    def unknown_labels(self) -> list[str]:
        return sorted(set(self.labels) - set(self.classes))

    def per_class(self) -> pd.DataFrame:
        """precision, recall, f1 and support per class (index: class name)."""
        import pandas as pd
        from sklearn.metrics import precision_recall_fscore_support

        p, r, f, s = precision_recall_fscore_support(
            self.true, self.predicted, labels=list(range(len(self.classes))), zero_division=0
        )
        frame = pd.DataFrame(
            {"precision": p, "recall": r, "f1": f, "support": s}, index=pd.Index(self.classes, name="class")
        )
        return frame

    def confusion(self) -> pd.DataFrame:
        """Counts: rows are true classes (unknown ones last), columns predicted classes."""
        import pandas as pd

        rows = self.classes + self.unknown_labels
        counts = np.zeros((len(rows), len(self.classes)), dtype=np.int64)
        row_of = {c: i for i, c in enumerate(rows)}
        for label, pred in zip(self.labels, self.predicted, strict=True):
            counts[row_of[label], pred] += 1
        return pd.DataFrame(
            counts, index=pd.Index(rows, name="true"), columns=pd.Index(self.classes, name="predicted")
        )

    def predictions(self) -> pd.DataFrame:
        """One row per photo: path, true class, predicted class, its probability, correct or not."""
        import pandas as pd

        pred = self.predicted
        return pd.DataFrame(
            {
                "path": self.paths,
                "true": self.labels,
                "predicted": [self.classes[i] for i in pred],
                "score": self.proba[np.arange(len(pred)), pred] if len(pred) else [],
                "correct": pred == self.true,
            }
        )

    def per_class_dict(self) -> dict[str, dict[str, float]]:
        frame = self.per_class()
        return {
            str(name): {
                "precision": float(row["precision"]),
                "recall": float(row["recall"]),
                "f1": float(row["f1"]),
                "support": int(row["support"]),
            }
            for name, row in frame.iterrows()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.accuracy,
            "n_images": len(self.paths),
            "classes": self.classes,
            "per_class": self.per_class_dict(),
            "confusion": self.confusion().values.tolist(),
            "unknown_classes": self.unknown_labels,
        }


# -- the trained model -------------------------------------------------------------------------------


class TrainedModel:
    """A backbone name + a classifier head over its (L2-normalised) penultimate features.

    `backbone`: the registry name of the network that makes the features; `classes`: class names in
    output order. `predict_proba_from_features` takes RAW features of that backbone (what
    `ImageModel.iter_outputs` yields) and applies the normalisation training used.

    >>> model = load_trained("birds.safetensors")                     # doctest: +SKIP
    >>> model.backbone, model.classes                                 # doctest: +SKIP
    ('efficientnet_lite0', ['blue_grosbeak', 'cardinal', 'yellow_breasted_chat'])
    >>> model.predict_proba_from_features(raw_features).shape         # doctest: +SKIP
    (10, 3)
    """

    def __init__(
        self,
        backbone: str,
        classes: Sequence[str],
        head: Head,
        *,
        classifier: str,
        params: dict[str, Any] | None = None,
        normalize: bool = True,
        backbone_info: dict[str, Any] | None = None,
        backbone_state: dict[str, np.ndarray] | None = None,
        training: dict[str, Any] | None = None,
        path: Path | None = None,
    ):
        self.backbone = backbone
        self.classes = list(classes)
        self.head = head
        self.classifier = classifier
        self.params = dict(params or {})
        self.normalize = normalize
        self.backbone_info = dict(backbone_info or {})
        self.backbone_state = backbone_state or None
        self.training = dict(training or {})
        self.path = path
        self._image_model: ImageModel | None = None
        if head.n_classes != len(self.classes):
            raise ValueError(
                f"the head predicts {head.n_classes} classes, but {len(self.classes)} names were given"
            )

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return (
            f"TrainedModel(backbone={self.backbone!r}, classifier={self.classifier!r}, "
            f"classes={self.classes!r}{where})"
        )

    @property
    def backbone_modified(self) -> bool:
        """True when fine-tuning changed backbone layers (the stock backbone's features do not fit)."""
        return self.backbone_state is not None

    # -- predictions from features --

    def _proba(self, raw: np.ndarray) -> np.ndarray:
        X = np.asarray(raw, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.head.n_features:
            raise UsageError(
                f"expected features of shape (N, {self.head.n_features}) from {self.backbone}, got {X.shape}"
            )
        if self.normalize:
            X = l2_normalize(X)
        return self.head.predict_proba(X)

    def predict_proba_from_features(self, features: np.ndarray) -> np.ndarray:
        """(N, n_classes) probabilities from RAW penultimate features (N, D) of `self.backbone`."""
        if self.backbone_modified:
            raise UsageError(
                "this model fine-tuned layers of its backbone, so the stock backbone's features do not fit "
                "it; use predict(paths), or features from model.feature_extractor()"
            )
        return self._proba(features)

    # -- predictions from photos --

    def image_model(self, run_options: RunOptions | None = None) -> ImageModel:
        """The backbone, with fine-tuned layers applied when the model has them."""
        # torch only when a network must run: loading a model file and predicting from stored
        # features (the photo index's labelers) need none
        from pixelsift.runtime.loaded import ImageModel
        from pixelsift.transfer.backbone import load_finetuned_backbone

        run_options = run_options or RunOptions()
        if not self.backbone_modified:
            return ImageModel.load(self.backbone, run_options)
        loaded = self._image_model
        if loaded is None or loaded.run_options.runner_key() != run_options.runner_key():
            assert self.backbone_state is not None
            loaded = self._image_model = load_finetuned_backbone(
                self.backbone, self.backbone_state, run_options
            )
        return loaded.with_options(run_options)

    def feature_extractor(
        self, cache: bool = True, run_options: RunOptions | None = None
    ) -> FeatureExtractor:
        """Raw features as this model sees them (fine-tuned backbone included), through the cache."""
        run_options = run_options or RunOptions()
        image_model = self.image_model(run_options) if self.backbone_modified else None
        return FeatureExtractor(
            self.backbone,
            cache=cache,
            run_options=run_options,
            image_model=image_model,
            backbone_digest=self.backbone_info.get("state_digest") if self.backbone_modified else None,
        )

    def iter_predict(
        self,
        inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str] | ImageError],
        top_k: int = 5,
        progress: bool | None = False,
        total: int | None = None,
        run_options: RunOptions | None = None,
        cache: bool = True,
    ) -> Iterator[Classification]:
        """One `Classification` (top-k of this model's classes) per input, failures included."""
        if top_k < 1:
            raise UsageError("top-k must be at least 1")
        extractor = self.feature_extractor(cache, run_options)
        sources = expand_inputs([inputs] if isinstance(inputs, str | os.PathLike) else inputs)
        names = tuple(self.classes)
        for row in extractor.iter_features(sources, progress=progress, total=total, desc="predict"):
            if row.vector is None:
                yield Classification(row.path, error=row.error)
            else:
                labels, scores = top_classes(self._proba(row.vector[None])[0], names, top_k)
                yield Classification(row.path, labels, scores)

    def predict(
        self,
        inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        top_k: int = 5,
        progress: bool | None = False,
        run_options: RunOptions | None = None,
        **run: Unpack[RunKwargs],
    ) -> ClassificationResults:
        """Top-k classes for files, folders or globs (unreadable inputs come back with `.error`).

        >>> load_trained("birds.safetensors").predict("photos/", top_k=1).to_pandas()   # doctest: +SKIP
        """
        options = RunOptions.of(run_options, **run)
        return ClassificationResults(
            self.iter_predict(inputs, top_k=top_k, progress=progress, run_options=options)
        )

    def evaluate_features(
        self, features: LabelledFeatures, failures: list[tuple[str, str]] | None = None
    ) -> Evaluation:
        proba = self._proba(features.raw) if len(features) else np.zeros((0, len(self.classes)))
        return Evaluation(self.classes, features.paths, features.labels, proba, list(failures or []))

    def evaluate(
        self,
        root_or_split: str | os.PathLike[str],
        split: str = "valid",
        progress: bool | None = False,
        run_options: RunOptions | None = None,
        **run: Unpack[RunKwargs],
    ) -> Evaluation:
        """Accuracy etc. on a data set's `split` (default valid/) or on a folder of class folders.

        Unreadable photos are left out and listed in the evaluation's `failures`.
        """
        samples = evaluation_samples(root_or_split, split)
        failures: list[tuple[str, str]] = []
        extractor = self.feature_extractor(run_options=RunOptions.of(run_options, **run))
        features = extract_labelled(extractor, samples, failures, progress, "evaluate")
        return self.evaluate_features(features, failures)

    # -- saving --

    def to_metadata(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        head_config, arrays = self.head.to_arrays()
        metadata = {
            "pixelsift_version": __version__,
            "backbone": {**self.backbone_info, "name": self.backbone},
            "features": {"normalize": "l2" if self.normalize else "none"},
            "classes": self.classes,
            "classifier": {"type": self.classifier, "params": self.params, "head": head_config},
            "training": self.training,
        }
        if self.backbone_state:
            arrays.update({f"backbone.{k}": v for k, v in self.backbone_state.items()})
        return metadata, arrays

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as one safetensors file (see `pixelsift.modelfile`)."""
        metadata, arrays = self.to_metadata()
        self.path = write_model_file(path, metadata, arrays)
        return self.path


def load_trained(path: str | os.PathLike[str]) -> TrainedModel:
    """Load a model saved by `pixelsift train` (safetensors + JSON; nothing in the file is executed).

    Raises `ModelFileError` for a corrupt, edited or newer-format file, `WeightsMissingError` when the
    backbone's weights are not on this machine (and may not be downloaded), `WeightsInvalidError` when
    they differ from the weights the model was trained with.

    >>> model = load_trained("birds.safetensors")                     # doctest: +SKIP
    """
    target = Path(path).expanduser()
    metadata, tensors = read_model_file(target)
    try:
        backbone = metadata["backbone"]
        name = backbone["name"]
        classes = metadata["classes"]
        classifier = metadata["classifier"]
        normalize = metadata["features"]["normalize"]
    except (KeyError, TypeError):
        raise ModelFileError(f"{target}: the model description is incomplete; the file is damaged") from None
    if (
        not isinstance(name, str)
        or not isinstance(classes, list)
        or not all(isinstance(c, str) for c in classes)
    ):
        raise ModelFileError(f"{target}: the model description is malformed")
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ModelFileError(f"{target}: the model needs at least two distinct class names")
    if normalize not in ("l2", "none") or not isinstance(classifier, dict):
        raise ModelFileError(f"{target}: the model description is malformed")
    head = head_from_arrays(
        classifier.get("head") or {}, {k: v for k, v in tensors.items() if k.startswith("head.")}
    )
    if head.n_classes != len(classes):
        raise ModelFileError(
            f"{target}: the classifier predicts {head.n_classes} classes but {len(classes)} are named"
        )
    state = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")} or None
    _check_backbone(target, name, backbone, head.n_features)
    return TrainedModel(
        name,
        classes,
        head,
        classifier=str(classifier.get("type")),
        params=classifier.get("params") or {},
        normalize=normalize == "l2",
        backbone_info=backbone,
        backbone_state=state,
        training=metadata.get("training") or {},
        path=target,
    )


def _check_backbone(path: Path, name: str, recorded: dict[str, Any], n_features: int) -> None:
    """The backbone must exist here with the same weights and preprocessing the model was trained on."""
    spec = get_model_spec(name)
    if not isinstance(spec, ClassifierSpec):
        raise ModelFileError(f"{path}: its backbone {name!r} is not an image classifier here")
    if _recorded_preprocessing(path, recorded) != spec.preprocessing:
        raise ModelFileError(
            f"{path}: it was trained with preprocessing {recorded['preprocessing']}, but {name!r} here uses "
            f"{spec.preprocessing.to_dict()}; use the pixelsift version that trained it, or train again"
        )
    if spec.embed_dim and spec.embed_dim != n_features:
        raise ModelFileError(
            f"{path}: its classifier takes {n_features} features, {name!r} gives {spec.embed_dim}"
        )
    if spec.weights is None:
        return
    file = weights.resolve(spec)  # WeightsMissingError names the file and the commands that fix it
    expected = recorded.get("weights_sha256")
    if expected:
        actual = FeatureCache().file_digest(file)
        if actual != expected:
            raise WeightsInvalidError(
                f"{path} was trained on {name!r} weights with sha256 {expected}, but {file} has sha256 "
                f"{actual}. Features from other weights do not fit this model: put the original weights file "
                f"back (`pixelsift models add {name} FILE`) or train the model again."
            )


def _recorded_preprocessing(path: Path, recorded: dict[str, Any]) -> Preprocessing:
    try:
        return Preprocessing.from_dict(recorded["preprocessing"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{path}: the backbone's preprocessing record is missing or malformed") from None


def evaluation_samples(root_or_split: str | os.PathLike[str], split: str = "valid") -> list[Sample]:
    """The labelled photos to evaluate: `split` of a data-set root, or all of a folder of class folders."""
    folder = Path(root_or_split).expanduser()
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    splits = split_folders(folder)
    dataset = read_dataset(folder)
    if not splits:
        return dataset.samples
    if split not in splits:
        raise UsageError(
            f"{folder} has no {split}/ split (it has {', '.join(s + '/' for s in splits)}); "
            "choose one with --split, or give the split folder itself"
        )
    return dataset.samples_of(split)


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

    @property
    def train_score(self) -> float:
        return self.train.accuracy

    @property
    def valid_score(self) -> float:
        return self.valid.accuracy

    def per_class(self) -> pd.DataFrame:
        return self.valid.per_class()

    def to_dict(self) -> dict[str, Any]:
        result = {
            "train_score": self.train_score,
            "valid_score": self.valid_score,
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
        if self.search is not None:
            result["search"] = self.search.to_dict(orient="records")
        if self.interrupted:
            result["interrupted"] = True
        return result

    def training_metadata(self) -> dict[str, Any]:
        """What the model file records about its training."""
        return {
            "root": str(self.data.dataset.root),
            "holdout": self.data.holdout,
            "n_train": len(self.train.paths),
            "n_valid": len(self.valid.paths),
            "train_score": self.train_score,
            "valid_score": self.valid_score,
            "per_class": self.valid.per_class_dict(),
            "skipped": len(self.failures),
        }


def _encode(labels: Sequence[str], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[label] for label in labels], dtype=np.int64)


def search_classifier(
    X: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5
) -> tuple[str, dict[str, Any], pd.DataFrame]:
    """Cross-validate every classifier's candidate parameters on (X, y); the best (first on ties).

    Returns (classifier name, parameters, table of candidates with their mean CV accuracy).
    """
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise UsageError("--search cross-validates: it needs at least 2 training images in every class")
    cv = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    # What one fold trains on: the smallest class loses up to ceil(smallest / folds) photos to testing.
    fold_smallest = smallest - -(-smallest // cv.n_splits)
    fold_train = len(y) - -(-len(y) // cv.n_splits)
    rows = []
    for choice in CLASSIFIERS.values():
        for params in choice.grid:
            row: dict[str, Any] = {"classifier": choice.name, "params": params}
            try:
                estimator = choice.build(params, seed, fold_train, fold_smallest)
            except UsageError as exc:  # e.g. too few photos per class to calibrate an SVM in a fold
                rows.append({**row, "cv_score": float("nan"), "cv_std": float("nan"), "note": str(exc)})
                continue
            scores = cross_val_score(estimator, choice.fit_inputs(X), y, cv=cv, scoring="accuracy")
            rows.append({**row, "cv_score": float(scores.mean()), "cv_std": float(scores.std()), "note": ""})
    best = int(np.nanargmax([r["cv_score"] for r in rows]))
    return rows[best]["classifier"], dict(rows[best]["params"]), pd.DataFrame(rows)


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
    **run: Unpack[RunKwargs],
) -> TrainResult:
    """Train a classifier for the classes of a data-set folder on `model`'s features.

    `classifier`: logreg | svm | knn | forest | mlp (`params` overrides its defaults). `search=True`
    cross-validates every classifier's small grid on the training split and keeps the best.
    Unreadable photos are skipped and listed in `failures`. How the backbone runs: `run_options`, or
    the keywords device, precision, engine, threads, batch_size, workers.

    >>> r = train("birds/", classifier="svm")          # doctest: +SKIP
    >>> r.valid_score, r.per_class()                   # doctest: +SKIP
    """
    choice = get_classifier(classifier)
    splits = labelled_splits(
        root,
        model,
        holdout,
        seed,
        cache,
        progress,
        RunOptions.of(run_options, **run),
    )
    data, extractor, failures = splits.data, splits.extractor, splits.failures
    train_set, valid_set, classes = splits.train, splits.valid, splits.classes
    X = l2_normalize(train_set.raw)
    y = _encode(train_set.labels, classes)
    table = None
    if search:
        name, chosen, table = search_classifier(X, y, seed)
        choice = CLASSIFIERS[name]
    else:
        chosen = {**choice.defaults, **(params or {})}
    estimator = choice.build(chosen, seed, len(y), int(np.bincount(y).min()))
    estimator.fit(choice.fit_inputs(X), y)
    _, description = extractor.key()
    trained = TrainedModel(
        extractor.spec.name,
        classes,
        choice.to_head(estimator, len(classes), X.shape[1]),
        classifier=choice.name,
        params=chosen,
        backbone_info=backbone_info(extractor, description),
    )
    result = TrainResult(
        trained,
        trained.evaluate_features(train_set),
        trained.evaluate_features(valid_set),
        data,
        failures,
        table,
        extractor.images_run,
    )
    trained.training = result.training_metadata()
    return result


def backbone_info(extractor: FeatureExtractor, description: dict[str, Any]) -> dict[str, Any]:
    """What a model file records about its backbone: identity of the weights and preprocessing."""
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
    **run: Unpack[RunKwargs],
) -> Evaluation:
    """Evaluate a trained model (or a saved model file) on labelled photos; see `TrainedModel.evaluate`.

    >>> pixelsift.evaluate("birds.safetensors", "birds/").accuracy     # doctest: +SKIP
    0.97
    """
    trained = model if isinstance(model, TrainedModel) else load_trained(model)
    return trained.evaluate(root_or_split, split=split, progress=progress, run_options=run_options, **run)
