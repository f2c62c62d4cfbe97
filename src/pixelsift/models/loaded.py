"""A pretrained image classifier loaded once and ready to run: features and logits for any photos.

`ImageModel.load("densenet121")` resolves the registry record, loads verified weights, cuts the network
at its last linear layer and wraps it in a `ModelRunner`. Classification, embeddings, transfer learning
and the photo index all run networks through this one class.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError, UsageError
from ..images import open_image
from ..pipeline import Decoder, Item, iter_batches
from ..progress import progress_bar
from .network import SplitNetwork, split_at_last_linear
from .preprocess import Preprocessing
from .registry import DEFAULT_CLASSIFIER, ModelSpec, get_model_spec
from .weights import load_network

_cache: dict[tuple[Any, ...], ImageModel] = {}
_cache_lock = threading.Lock()


class ImageModel:
    """A classification network split into features and head, with its preprocessing and runner."""

    def __init__(self, spec: ModelSpec, network: SplitNetwork, runner: Any):
        if spec.preprocessing is None:
            raise UsageError(f"model {spec.name!r} has no image preprocessing; it is not an image classifier")
        self.spec = spec
        self.network = network
        self.runner = runner
        self.preprocessing: Preprocessing = spec.preprocessing
        self.categories: tuple[str, ...] = spec.categories

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def embed_dim(self) -> int:
        return int(self.spec.embed_dim or self.network.head.in_features)  # type: ignore[arg-type]

    @classmethod
    def load(
        cls,
        name: str = DEFAULT_CLASSIFIER,
        device: str | None = None,
        precision: str | None = None,
        threads: int | None = None,
        engine: str = "torch",
        cached: bool = True,
    ) -> ImageModel:
        """Load (or reuse) the model `name`; weights come through the cache, never silently swapped."""
        key = (name, device, precision, threads, engine)
        with _cache_lock:
            if cached and key in _cache:
                return _cache[key]
        spec = get_model_spec(name)
        if spec.task != "classify":
            raise UsageError(f"model {name!r} is a {spec.task} model; this needs an image classifier")
        net = load_network(spec)
        split = spec.extra.get("split", split_at_last_linear)
        network: SplitNetwork = split(net)
        from ..runner import create_runner

        runner = create_runner(
            spec, network, engine=engine, device=device, precision=precision, threads=threads
        )
        model = cls(spec, network, runner)
        if cached:
            with _cache_lock:
                _cache[key] = model
        return model

    def decode(self, path: str | Path | bytes) -> tuple[np.ndarray, tuple[int, int]]:
        """File -> preprocessed CHW float32 pixels and the photo's (width, height)."""
        img = open_image(path, min_size=self.preprocessing.resize)
        return self.preprocessing(img), img.size

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, H, W) pixels -> (features (N, D), logits (N, classes))."""
        features, logits = self.runner(pixels)[:2]
        return features, logits

    def iter_outputs(
        self,
        sources: Iterable[str | Path | ImageError],
        batch_size: int | None = None,
        workers: int | None = None,
        progress: bool | None = False,
        total: int | None = None,
        desc: str = "images",
        decode: Decoder | None = None,
    ) -> Iterator[tuple[Item, np.ndarray | None, np.ndarray | None]]:
        """For each input, in order: (item, features, logits), or (item, None, None) when it failed.

        `decode(path) -> (pixels CHW float32, info)` replaces `self.decode` when a caller needs more from
        each file than pixels (the photo index reads its hash and EXIF from the same bytes; training
        augments); `item.info` carries it.
        """
        with progress_bar(total=total, desc=desc, enabled=progress) as bar:
            batches = iter_batches(
                sources,
                decode or self.decode,
                batch_size=batch_size or self.runner.batch_size,
                workers=workers,
            )
            for batch in batches:
                if len(batch.pixels):
                    features, logits = self.run(batch.pixels)
                for item in batch.items:
                    if item.ok:
                        yield item, features[item.row], logits[item.row]
                    else:
                        yield item, None, None
                bar.update(len(batch.items))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def clear_model_cache() -> None:
    with _cache_lock:
        _cache.clear()
