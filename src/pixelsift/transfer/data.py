"""The labelled photos transfer learning starts from: a data-set folder's train and validation
splits (or a stratified hold-out), and their backbone features."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelsift.errors import UsageError
from pixelsift.features.ensemble import EnsembleExtractor, feature_extractor
from pixelsift.features.extractor import FeatureExtractor
from pixelsift.imaging.datasets import Dataset, Sample, holdout_split, read_dataset, split_folders
from pixelsift.runtime.options import RunOptions

HOLDOUT_FRACTION = 0.2


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
    if not valid and train:  # one photo per class: nothing can be held out to measure the model on
        counts = {c: sum(s.label == c for s in train) for c in dict.fromkeys(s.label for s in train)}
        raise UsageError(
            f"{dataset.root}: too few photos to validate a model ("
            + ", ".join(f"{c}: {n}" for c, n in counts.items())
            + "); give each class at least 2 photos (a few dozen train a useful model), or a valid/ folder"
        )
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
    extractor: FeatureExtractor | EnsembleExtractor,
    samples: Sequence[Sample],
    failures: list[tuple[str, str]],
    progress: bool | None = False,
    desc: str = "features",
    mirror: bool = False,
) -> LabelledFeatures:
    """Features of `samples`; each unreadable photo is appended to `failures` and skipped.
    `mirror=True`: of the photos mirrored left to right (test-time augmentation; never cached)."""
    paths: list[str] = []
    labels: list[str] = []
    vectors: list[np.ndarray] = []
    rows = extractor.iter_features(
        [s.path for s in samples], progress=progress, total=len(samples), desc=desc, mirror=mirror
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
    extractor: FeatureExtractor | EnsembleExtractor
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
    extractor = feature_extractor(model, cache=cache, run_options=run_options)
    # entries of the folder that cannot be photos (a link loop, a FIFO) are failures like unreadable photos
    failures: list[tuple[str, str]] = [(e.path, e.reason) for e in data.dataset.skipped]
    train_set = extract_labelled(extractor, data.train, failures, progress, "train features")
    valid_set = extract_labelled(extractor, data.valid, failures, progress, "valid features")
    classes = sorted(set(train_set.labels))
    if len(classes) < 2:
        raise UsageError(
            f"{data.dataset.root}: training needs readable photos of at least 2 classes, found {len(classes)}"
        )
    return LabelledSplits(data, extractor, train_set, valid_set, classes, failures)


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
