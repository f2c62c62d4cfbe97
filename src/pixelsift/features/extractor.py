"""`FeatureExtractor`: images -> a pretrained classifier's penultimate vectors, through the on-disk
feature cache (a photo seen before under the same model, weights, preprocessing, precision and engine
is not run again), and the normalisations the vectors come in ("l2", "rms", "none")."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pixelsift.core.arrays import l2_normalize
from pixelsift.core.hashing import sha256_file
from pixelsift.core.progress import progress_bar
from pixelsift.errors import ImageError, UsageError
from pixelsift.features.cache import FeatureCache, feature_key
from pixelsift.imaging.pipeline import Decoder
from pixelsift.models import weights
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_spec_of
from pixelsift.runtime.options import RunOptions

if TYPE_CHECKING:
    from pixelsift.runtime.loaded import ImageModel


CHUNK = 256  # inputs looked up in the cache at a time: bounds memory on huge folders


class FeatureRow(NamedTuple):
    """One input's raw feature vector, or the reason it has none."""

    path: str
    vector: np.ndarray | None
    error: str | None


NORMALIZATIONS = ("l2", "rms", "none")


def normalization_name(how: str | bool) -> str:
    """ "l2", "rms" or "none" (True means "l2", False "none"); anything else is a `UsageError`."""
    name = ("l2" if how else "none") if isinstance(how, bool) else how
    if name not in NORMALIZATIONS:
        raise UsageError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, not {how!r}")
    return name


def normalize_vectors(vectors: np.ndarray, how: str | bool) -> np.ndarray:
    """Rows normalised as "l2" (unit length), "rms" (unit length x sqrt(dim)) or "none"; float32."""
    how = normalization_name(how)
    if how == "none":
        return np.asarray(vectors, dtype=np.float32)
    unit = l2_normalize(vectors)
    return unit * np.float32(np.sqrt(unit.shape[-1])) if how == "rms" else unit


class FeatureExtractor:
    """Raw penultimate features of a backbone for image files, read from the cache when possible.

    The network is loaded only when some file is not in the cache; `images_run` counts the images
    that went through it.

    >>> fx = FeatureExtractor("efficientnet_lite0")                  # doctest: +SKIP
    >>> [row.vector.shape for row in fx.iter_features(["a.jpg"])]    # doctest: +SKIP
    [(1280,)]
    """

    def __init__(
        self,
        model: str = DEFAULT_CLASSIFIER,
        *,
        cache: bool | FeatureCache = True,
        run_options: RunOptions | None = None,
        image_model: ImageModel | None = None,
        backbone_digest: str | None = None,
    ):
        self.spec: ClassifierSpec = get_spec_of(model, ClassifierSpec, needed_for="features")
        self.run_options = run_options or RunOptions()
        self._image_model = image_model
        self.backbone_digest = backbone_digest
        if cache is True:
            self.cache: FeatureCache | None = FeatureCache()
        else:
            self.cache = cache or None
        self._key: tuple[str, dict[str, Any]] | None = None
        self.images_run = 0
        self.images_cached = 0

    @property
    def image_model(self) -> ImageModel:
        if self._image_model is None:
            # torch only when some photo is not in the feature cache
            from pixelsift.runtime.loaded import ImageModel

            self._image_model = ImageModel.load(self.spec.name, self.run_options)
        return self._image_model

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def embed_dim(self) -> int:
        return int(self.spec.embed_dim or self.image_model.embed_dim)

    def mirrored_decoder(self) -> Decoder:
        """The backbone's own decoding, mirrored left to right (test-time augmentation)."""
        model = self.image_model

        def decode(path: str) -> tuple[np.ndarray, Any]:
            pixels, info = model.decode(path)
            return np.ascontiguousarray(pixels[..., ::-1]), info

        return decode

    def weights_sha256(self) -> str:
        """sha256 of the weights file the backbone loads (hashed once per file, then remembered)."""
        if self.spec.weights is None:
            return "none"
        path = weights.resolve(self.spec)
        return self.cache.file_digest(path) if self.cache else sha256_file(path)

    def key(self) -> tuple[str, dict[str, Any]]:
        """(feature key, what it stands for): everything that changes the numbers."""
        if self._key is None:
            ran = None
            if self._image_model is None:
                from pixelsift.runtime.engines import planned_candidate  # imports torch

                # what would run, without loading the network (None: `auto` has not measured it yet)
                ran = planned_candidate(self.spec, self.run_options, "features")
            if ran is None:
                ran = (self.image_model.engine, self.image_model.precision)
            engine, precision = ran
            description = {
                "model": self.spec.name,
                "weights_sha256": self.weights_sha256(),
                "preprocessing": self.spec.preprocessing.to_dict(),
                "precision": precision,
                "engine": engine,
                "backbone_state": self.backbone_digest,
            }
            self._key = (feature_key(description), description)
        return self._key

    def iter_features(
        self,
        sources: Iterable[str | os.PathLike[str] | ImageError],
        progress: bool | None = False,
        total: int | None = None,
        desc: str = "features",
        decode: Decoder | None = None,
        mirror: bool = False,
    ) -> Iterator[FeatureRow]:
        """One `FeatureRow` per input, in input order, failures included (never raised).

        `decode` replaces the model's own decoding (e.g. augmentation); `mirror=True` mirrors each
        photo left to right; such features are never cached.
        """
        if mirror:
            if decode is not None:
                raise ValueError("mirror=True decodes with the model's own decoding; give no decode")
            decode = self.mirrored_decoder()
        use_cache = self.cache is not None and decode is None
        with progress_bar(total=total, desc=desc, enabled=progress) as bar:
            chunk: list[str | ImageError] = []
            for source in sources:
                chunk.append(source if isinstance(source, ImageError) else os.fspath(source))
                if len(chunk) == CHUNK:
                    yield from self._run_chunk(chunk, use_cache, bar, decode)
                    chunk = []
            if chunk:
                yield from self._run_chunk(chunk, use_cache, bar, decode)

    def _run_chunk(
        self, chunk: list[str | ImageError], use_cache: bool, bar: Any, decode: Decoder | None
    ) -> Iterator[FeatureRow]:
        rows: list[FeatureRow | None] = [None] * len(chunk)
        digests: list[str | None] = [None] * len(chunk)
        found: dict[str, np.ndarray] = {}
        if use_cache:
            assert self.cache is not None
            paths = [(i, s) for i, s in enumerate(chunk) if not isinstance(s, ImageError)]
            for (i, _), hashed in zip(paths, self.cache.file_digests([s for _, s in paths]), strict=True):
                if isinstance(hashed, ImageError):
                    rows[i] = FeatureRow(hashed.path, None, hashed.reason)
                else:
                    digests[i] = hashed
            key, _ = self.key()
            found = self.cache.get(key, [d for d in digests if d is not None])
        misses: list[int] = []
        for i, source in enumerate(chunk):
            if isinstance(source, ImageError):
                rows[i] = FeatureRow(source.path, None, source.reason)
            elif rows[i] is None:
                digest = digests[i]
                if digest is not None and digest in found:
                    rows[i] = FeatureRow(source, found[digest], None)
                    self.images_cached += 1
                else:
                    misses.append(i)
        bar.update(len(chunk) - len(misses))
        if misses:
            new: list[tuple[str, np.ndarray]] = []
            outputs = self.image_model.iter_outputs(
                [chunk[i] for i in misses],
                decode=decode,
            )
            for i, (item, features, _) in zip(misses, outputs, strict=True):
                bar.update(1)
                if features is None:
                    rows[i] = FeatureRow(item.path, None, item.error)
                    continue
                vector = np.array(features, dtype=np.float32)  # a copy: the batch array is reused
                rows[i] = FeatureRow(item.path, vector, None)
                self.images_run += 1
                digest = digests[i]
                if use_cache and digest is not None:
                    new.append((digest, vector))
            if new:
                assert self.cache is not None
                key, description = self.key()
                self.cache.put(key, description, new)
        for row in rows:
            assert row is not None
            yield row


def feature_names(dim: int) -> list[str]:
    return [f"f{i}" for i in range(dim)]
