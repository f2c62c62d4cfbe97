"""Feature ensembles: several backbones' features side by side (`-m efficientnet_lite0+efficientnet_lite2`).

Each member's raw vector is L2-normalised and the results are concatenated, so every backbone weighs
the same whatever the scale of its features; a classifier then sees one vector of the summed width.
Each member is an ordinary `FeatureExtractor`, so its features are cached on their own: an ensemble
of backbones already used costs no network run, and a single backbone reuses an ensemble's features.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from pixelsift.core.arrays import l2_normalize
from pixelsift.errors import ImageError, UsageError
from pixelsift.features.cache import FeatureCache
from pixelsift.features.extractor import FeatureExtractor, FeatureRow
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import get_spec_of
from pixelsift.runtime.options import RunOptions

SEPARATOR = "+"


def ensemble_members(name: str) -> list[str] | None:
    """The registry names of an ensemble's backbones ("a+b"), or None for a single backbone.

    Names are resolved as `-m` resolves them (`ResNet-50` is `resnet50`); a backbone named twice,
    or an empty part, is a `UsageError`."""
    if SEPARATOR not in name:
        return None
    parts = [part.strip() for part in name.split(SEPARATOR)]
    if not all(parts):
        raise UsageError(f"-m {name!r}: an ensemble is backbone names joined by '+', like a+b")
    members = [get_spec_of(part, ClassifierSpec, needed_for="features").name for part in parts]
    if len(set(members)) != len(members):
        raise UsageError(f"-m {name!r} names the same backbone twice")
    return members


class EnsembleExtractor:
    """The concatenated, per-member L2-normalised features of several backbones, each through the
    feature cache. Offers what `FeatureExtractor` offers to training and prediction."""

    def __init__(
        self,
        members: list[str],
        *,
        cache: bool | FeatureCache = True,
        run_options: RunOptions | None = None,
    ):
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two backbones")
        self.run_options = run_options or RunOptions()
        shared = FeatureCache() if cache is True else cache
        self.members = [FeatureExtractor(m, cache=shared, run_options=self.run_options) for m in members]
        self.name = SEPARATOR.join(m.name for m in self.members)

    @property
    def embed_dim(self) -> int:
        return sum(m.embed_dim for m in self.members)

    @property
    def images_run(self) -> int:
        return sum(m.images_run for m in self.members)

    @property
    def image_model(self) -> Any:
        raise UsageError(
            f"{self.name} is an ensemble of {len(self.members)} backbones; this needs one network "
            "(explanations and fine-tuning take a single backbone: name it with -m)"
        )

    def iter_features(
        self,
        sources: Iterable[str | os.PathLike[str] | ImageError],
        progress: bool | None = False,
        total: int | None = None,
        desc: str = "features",
        mirror: bool = False,
    ) -> Iterator[FeatureRow]:
        """One row per input, in order: the members' vectors side by side, or the first member's
        error. The members walk the inputs in step (a bounded gap between them)."""
        copies = itertools.tee(sources, len(self.members))
        streams = [
            member.iter_features(
                copy, progress=progress if i == 0 else False, total=total, desc=desc, mirror=mirror
            )
            for i, (member, copy) in enumerate(zip(self.members, copies, strict=True))
        ]
        for rows in zip(*streams, strict=True):
            failed = next((row for row in rows if row.vector is None), None)
            if failed is not None:
                yield FeatureRow(rows[0].path, None, failed.error)
                continue
            vectors = [l2_normalize(np.asarray(row.vector, np.float32)) for row in rows]
            yield FeatureRow(rows[0].path, np.concatenate(vectors).astype(np.float32), None)


def feature_extractor(
    model: str, cache: bool | FeatureCache = True, run_options: RunOptions | None = None
) -> FeatureExtractor | EnsembleExtractor:
    """The extractor for `-m NAME`: one backbone, or an ensemble for names joined by '+'."""
    members = ensemble_members(model)
    if members is None:
        return FeatureExtractor(model, cache=cache, run_options=run_options)
    return EnsembleExtractor(members, cache=cache, run_options=run_options)
