"""A pretrained image classifier loaded once and ready to run: features and logits for any photos.

`ImageModel.load("densenet121", run_options)` resolves the registry record, loads verified weights, cuts the
network into features and head (`load_split_network`) and wraps it in the runner `run_options` ask for.
Classification, embeddings, transfer learning and the photo index all run networks through this class.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import Unpack

from pixelsift.core.progress import progress_bar
from pixelsift.errors import ImageError
from pixelsift.imaging.images import open_image
from pixelsift.imaging.pipeline import Batch, Decoder, Item, iter_computed
from pixelsift.models.network import SplitNetwork, split_at_last_linear
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_spec_of
from pixelsift.models.weights import load_network
from pixelsift.runtime.engines import create_runner
from pixelsift.runtime.options import RunKwargs, RunOptions
from pixelsift.runtime.runner import Runner

_cache: dict[tuple[Any, ...], ImageModel] = {}
_cache_lock = threading.Lock()


def load_split_network(spec: ClassifierSpec) -> SplitNetwork:
    """The record's network with verified weights, cut into features and head (its own `split`, else at
    its last linear layer)."""
    split = spec.split or split_at_last_linear
    return split(load_network(spec))


class ImageModel:
    """A classification network split into features and head, with its preprocessing and runner."""

    def __init__(self, spec: ClassifierSpec, network: SplitNetwork, runner: Runner, run_options: RunOptions):
        self.spec = spec
        self.network = network
        self.runner = runner
        self.run_options = run_options
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
        run_options: RunOptions | None = None,
        *,
        cached: bool = True,
        purpose: str = "features",
        **run: Unpack[RunKwargs],
    ) -> ImageModel:
        """Load (or reuse) the model `name`; weights come through the cache, never silently swapped.

        `run_options` (or the keywords device, precision, engine, threads, streams, batch_size,
        workers) say how it runs. `purpose`: "classify" when only its classes are used (then
        `--engine auto` may choose int8), "features" when its embeddings are (fp32 / bf16 only).
        """
        run_options = RunOptions.of(run_options, **run)
        name = get_spec_of(name, ClassifierSpec).name  # "VGG16" and "vgg16" are one model
        key = (name, purpose, *run_options.runner_key())  # batch size needs no second network
        with _cache_lock:
            model = _cache.get(key) if cached else None
        if model is None:
            spec = get_spec_of(name, ClassifierSpec)
            network = load_split_network(spec)
            model = cls(spec, network, create_runner(spec, network, run_options, purpose), run_options)
            if cached:
                with _cache_lock:
                    _cache[key] = model
        return model.with_options(run_options)

    def with_options(self, run_options: RunOptions) -> ImageModel:
        """This model with another batch size or decode workers (same network and runner)."""
        if run_options == self.run_options:
            return self
        if run_options.runner_key() != self.run_options.runner_key():
            raise ValueError("another device, precision, engine or thread count needs ImageModel.load")
        return ImageModel(self.spec, self.network, self.runner, run_options)

    @property
    def batch_size(self) -> int:
        """Images per batch: the run options' when set, else what the runner prefers on its device."""
        return self.run_options.batch_size or int(self.runner.batch_size)

    def decode(self, path: str | Path | bytes) -> tuple[np.ndarray, tuple[int, int]]:
        """File -> the model's uint8 CHW pixels (`Preprocessing.pixels`) and the photo's (width, height)."""
        img = open_image(path, min_size=self.preprocessing.resize)
        return self.preprocessing.pixels(img), img.size

    @property
    def engine(self) -> str:
        """The engine this model runs on (what `auto` chose, or what was asked for)."""
        return self.runner.engine

    @property
    def precision(self) -> str:
        return str(self.runner.precision)

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, H, W) pixels, uint8 from `decode` or normalised float32 -> (features (N, D),
        logits (N, classes))."""
        features, logits = self.runner(pixels)[:2]
        return features, logits

    def logits_from_features(self, features: np.ndarray) -> np.ndarray:
        """The head alone: (N, D) raw penultimate features -> (N, classes) logits, in float32 on the CPU
        (the photo index derives probabilities from a batch job's stored features this way)."""
        import torch  # loaded with the network already; imported here as everywhere in runtime/

        with torch.no_grad():
            head = self.network.head.float().cpu()
            return head(torch.as_tensor(np.asarray(features, np.float32))).numpy()

    def iter_outputs(
        self,
        sources: Iterable[str | Path | ImageError],
        batch_size: int | None = None,
        progress: bool | None = False,
        total: int | None = None,
        desc: str = "images",
        decode: Decoder | None = None,
        also: Callable[[Batch], None] | None = None,
    ) -> Iterator[tuple[Item, np.ndarray | None, np.ndarray | None]]:
        """For each input, in order: (item, features, logits), or (item, None, None) when it failed.

        `decode(path) -> (pixels CHW, info)` replaces `self.decode` when a caller needs more from
        each file than pixels (the photo index reads its hash and EXIF from the same bytes; training
        augments); `item.info` carries it. Batches run on the runner's streams (`iter_computed`);
        `also(batch)` runs in the same lane after the model (the index's other networks).
        """
        with progress_bar(total=total, desc=desc, enabled=progress) as bar:
            batches = iter_computed(
                sources,
                decode or self.decode,
                self.run,
                batch_size=batch_size or self.batch_size,
                streams=self.runner.streams,
                workers=self.runner.workers,
                also=also,
            )
            for batch, outputs in batches:
                if outputs is not None:
                    features, logits = outputs
                for item in batch.items:
                    if item.ok:
                        yield item, features[item.row], logits[item.row]
                    else:
                        yield item, None, None
                bar.update(len(batch.items))


def clear_model_cache() -> None:
    with _cache_lock:
        _cache.clear()
