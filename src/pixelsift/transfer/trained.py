"""`TrainedModel`: a backbone name and a classifier head over its features; saving and loading it
(`load_trained` checks the file, the backbone's weights and its preprocessing before anything runs)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import Unpack

from pixelsift.core.arrays import l2_normalize
from pixelsift.core.hashing import sha256_file
from pixelsift.errors import ImageError, ModelFileError, UsageError, WeightsInvalidError
from pixelsift.features.cache import FeatureCache
from pixelsift.features.ensemble import EnsembleExtractor, ensemble_members
from pixelsift.features.extractor import FeatureExtractor
from pixelsift.imaging.images import expand_inputs
from pixelsift.models import weights
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import DEFAULT_TOP_K, get_model_spec
from pixelsift.runtime.classification import Classification, ClassificationResults, top_classes
from pixelsift.runtime.options import RunKwargs, RunOptions
from pixelsift.transfer.data import LabelledFeatures, evaluation_samples, extract_labelled
from pixelsift.transfer.domain import DomainGate
from pixelsift.transfer.evaluation import Evaluation
from pixelsift.transfer.heads import Head, head_from_arrays
from pixelsift.transfer.modelfile import read_model_file, write_model_file
from pixelsift.version import __version__

if TYPE_CHECKING:
    from pixelsift.runtime.loaded import ImageModel

# Test-time augmentation: "flip" averages the probabilities of each photo and its mirror image.
TTA = ("none", "flip")


def check_tta(tta: str | None) -> str:
    name = tta or "none"
    if name not in TTA:
        raise UsageError(f"unknown test-time augmentation {tta!r}; use one of {', '.join(TTA)}")
    return name


TRAINING_PHOTOS = "training.photos"  # the model file's array of its training photos' content keys


def content_keys(paths: Sequence[str]) -> list[int | None]:
    """A photo's content key: the first 8 bytes of its sha256 as a signed 64-bit integer (safetensors
    and JSON keep it exactly); None for a file that cannot be read."""
    keys: list[int | None] = []
    for path in paths:
        try:
            keys.append(int.from_bytes(bytes.fromhex(sha256_file(str(path))[:16]), "big", signed=True))
        except OSError:
            keys.append(None)
    return keys


def training_photo_keys(paths: Sequence[str]) -> np.ndarray:
    """The sorted content keys of a model's training photos, as its file keeps them."""
    return np.array(sorted({k for k in content_keys(paths) if k is not None}), np.int64)


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
        domain: DomainGate | None = None,
        training_photos: np.ndarray | None = None,
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
        self.domain = domain  # None: a model from before the gate, it labels every photo
        # the first 8 bytes of each training photo's sha256, sorted (`content_keys`): `evaluate` counts
        # the photos it has seen in training; None for a model saved before they were kept
        self.training_photos = training_photos
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

    def recognises(self, features: np.ndarray) -> np.ndarray:
        """True for the photos (RAW features) that resemble the training photos (see `transfer.domain`)."""
        if self.domain is None:
            return np.ones(len(features), bool)
        return self.domain.accepts(features)

    def predict_proba_from_features(self, features: np.ndarray) -> np.ndarray:
        """(N, n_classes) probabilities from RAW penultimate features (N, D) of `self.backbone`."""
        if self.backbone_modified:
            raise UsageError(
                "this model fine-tuned layers of its backbone, so the stock backbone's features do not fit "
                "it; use predict(paths), or features from model.feature_extractor()"
            )
        return self._proba(features)

    # -- predictions from photos --

    @property
    def members(self) -> list[str] | None:
        """The backbones of a feature ensemble ("a+b"), or None for a single backbone."""
        return ensemble_members(self.backbone)

    def image_model(self, run_options: RunOptions | None = None) -> ImageModel:
        """The backbone, with fine-tuned layers applied when the model has them."""
        # torch only when a network must run: loading a model file and predicting from stored
        # features (the photo index's labelers) need none
        from pixelsift.runtime.loaded import ImageModel
        from pixelsift.transfer.backbone import load_finetuned_backbone

        if self.members is not None:
            raise UsageError(
                f"this model stands on an ensemble of backbones ({self.backbone}); explanations and "
                "fine-tuning need a model trained on one backbone"
            )
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
    ) -> FeatureExtractor | EnsembleExtractor:
        """Raw features as this model sees them (fine-tuned backbone included; each member of an
        ensemble side by side), through the cache."""
        run_options = run_options or RunOptions()
        if self.members is not None:
            return EnsembleExtractor(self.members, cache=cache, run_options=run_options)
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
        top_k: int = DEFAULT_TOP_K,
        progress: bool | None = False,
        total: int | None = None,
        run_options: RunOptions | None = None,
        cache: bool = True,
        tta: str | None = None,
    ) -> Iterator[Classification]:
        """One `Classification` (top-k of this model's classes) per input, failures included.
        `tta="flip"`: each photo's probabilities averaged with its mirror image's."""
        if top_k < 1:
            raise UsageError("top-k must be at least 1")
        flip = check_tta(tta) == "flip"
        extractor = self.feature_extractor(cache, run_options)
        sources = expand_inputs([inputs] if isinstance(inputs, str | os.PathLike) else inputs)
        names = tuple(self.classes)
        # with flip, two passes over the inputs in step (tee keeps only the gap between them)
        plain, again = itertools.tee(sources) if flip else (sources, iter(()))
        rows = extractor.iter_features(plain, progress=progress, total=total, desc="predict")
        mirror = extractor.iter_features(again, mirror=True) if flip else None
        for row in rows:
            flipped = next(mirror) if mirror is not None else None
            if row.vector is None:
                yield Classification(row.path, error=row.error)
            else:
                proba = self._proba(row.vector[None])[0]
                if flipped is not None and flipped.vector is not None:
                    proba = (proba + self._proba(flipped.vector[None])[0]) / 2
                labels, scores = top_classes(proba, names, top_k)
                known = bool(self.recognises(row.vector[None])[0]) if self.domain is not None else None
                yield Classification(row.path, labels, scores, recognised=known)

    def predict(
        self,
        inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        top_k: int = DEFAULT_TOP_K,
        progress: bool | None = False,
        run_options: RunOptions | None = None,
        tta: str | None = None,
        **run: Unpack[RunKwargs],
    ) -> ClassificationResults:
        """Top-k classes for files, folders or globs (unreadable inputs come back with `.error`).
        `tta="flip"` averages each photo's probabilities with its mirror image's.

        >>> load_trained("birds.safetensors").predict("photos/", top_k=1).to_pandas()   # doctest: +SKIP
        """
        options = RunOptions.of(run_options, **run)
        return ClassificationResults(
            self.iter_predict(inputs, top_k=top_k, progress=progress, run_options=options, tta=tta)
        )

    def evaluate_features(
        self,
        features: LabelledFeatures,
        failures: list[tuple[str, str]] | None = None,
        mirrored: LabelledFeatures | None = None,
    ) -> Evaluation:
        """Scores on labelled features; with `mirrored` (the same photos flipped, in the same order)
        each photo's probabilities are the mean of both."""
        proba = self._proba(features.raw) if len(features) else np.zeros((0, len(self.classes)))
        if mirrored is not None and len(features):
            if mirrored.paths != features.paths:
                raise ValueError("the mirrored features must be of the same photos, in the same order")
            proba = (proba + self._proba(mirrored.raw)) / 2
        return Evaluation(self.classes, features.paths, features.labels, proba, list(failures or []))

    def evaluate(
        self,
        root_or_split: str | os.PathLike[str],
        split: str = "valid",
        progress: bool | None = False,
        run_options: RunOptions | None = None,
        cache: bool = True,
        tta: str | None = None,
        **run: Unpack[RunKwargs],
    ) -> Evaluation:
        """Accuracy etc. on a data set's `split` (default valid/) or on a folder of class folders.

        Unreadable photos are left out and listed in the evaluation's `failures`; `cache=False`
        neither reads nor writes the feature cache. `tta="flip"` averages each photo's probabilities
        with its mirror image's.
        """
        flip = check_tta(tta) == "flip"
        samples = evaluation_samples(root_or_split, split)
        failures: list[tuple[str, str]] = []
        extractor = self.feature_extractor(cache, run_options=RunOptions.of(run_options, **run))
        features = extract_labelled(extractor, samples, failures, progress, "evaluate")
        flipped = None
        if flip:
            read = set(features.paths)
            readable = [s for s in samples if str(s.path) in read]
            flipped = extract_labelled(extractor, readable, [], progress, "evaluate (mirrored)", mirror=True)
        evaluation = self.evaluate_features(features, failures, flipped)
        evaluation.seen_in_training = self.seen_in_training(evaluation.paths)
        return evaluation

    def seen_in_training(self, paths: Sequence[str]) -> int | None:
        """How many of `paths` are (by content) photos this model was trained on; None when the model
        does not know its training photos (saved before they were kept)."""
        if self.training_photos is None:
            return None
        known = set(np.asarray(self.training_photos, np.int64).tolist())
        return sum(key in known for key in content_keys(paths) if key is not None)

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
        if self.domain is not None:
            record, domain_arrays = self.domain.to_metadata()
            metadata["domain"] = record
            arrays.update(domain_arrays)
        if self.training_photos is not None:
            arrays[TRAINING_PHOTOS] = np.asarray(self.training_photos, np.int64)
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
    broken = [k for k, v in tensors.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if broken:  # NaN in, NaN out: every prediction would be meaningless (and not even valid JSON)
        raise ModelFileError(
            f"{target}: its weights hold NaN or infinite values ({broken[0]}); the file is damaged"
        )
    head = head_from_arrays(
        classifier.get("head") or {}, {k: v for k, v in tensors.items() if k.startswith("head.")}
    )
    if head.n_classes != len(classes):
        raise ModelFileError(
            f"{target}: the classifier predicts {head.n_classes} classes but {len(classes)} are named"
        )
    state = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")} or None
    _check_backbones(target, name, backbone, head.n_features)
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
        domain=DomainGate.from_metadata(metadata.get("domain"), tensors, target, head.n_features),
        training_photos=tensors.get(TRAINING_PHOTOS),
    )


def _check_backbones(path: Path, name: str, recorded: dict[str, Any], n_features: int) -> None:
    """`_check_backbone` for the one backbone, or for each member of an ensemble."""
    try:
        members = ensemble_members(name)
    except UsageError as exc:
        raise ModelFileError(f"{path}: its backbones {name!r} are not all here ({exc})") from None
    if members is None:
        return _check_backbone(path, name, recorded, n_features)
    records = recorded.get("members")
    if (
        not isinstance(records, list)
        or len(records) != len(members)
        or not all(isinstance(r, dict) for r in records)
    ):
        raise ModelFileError(f"{path}: the record of its ensemble's backbones is missing or malformed")
    dims = [r.get("embed_dim") for r in records]
    if not all(isinstance(d, int) and d > 0 for d in dims) or sum(dims) != n_features:
        raise ModelFileError(f"{path}: its classifier takes {n_features} features, its backbones give {dims}")
    for member, record, dim in zip(members, records, dims, strict=True):
        _check_backbone(path, member, record, dim)


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
