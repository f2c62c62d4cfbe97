"""Top-k ImageNet classification of any number of photos.

>>> results = classify("samples/chelsea.png", top_k=3)      # doctest: +SKIP
>>> results[0].labels
['tiger cat', 'Egyptian cat', 'tabby']
>>> results.to_pandas()                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from pixelsift.errors import ImageError, UsageError
from pixelsift.imaging.images import expand_inputs, open_image
from pixelsift.models.registry import DEFAULT_CLASSIFIER, DEFAULT_TOP_K
from pixelsift.runtime.classification import Classification, ClassificationResults, top_k_of
from pixelsift.runtime.loaded import ImageModel
from pixelsift.runtime.options import RunKwargs, RunOptions

if TYPE_CHECKING:
    from PIL import Image

Inputs = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def as_input_list(inputs: Inputs | Iterable[str | Path | ImageError]) -> Iterable[Any]:
    """A single path or pattern becomes a one-item list; iterables pass through lazily."""
    return [inputs] if isinstance(inputs, str | os.PathLike) else inputs


class Classifier:
    """A loaded classifier to reuse across calls (the module-level `classify` loads one per call).

    >>> clf = Classifier("efficientnet_lite0")          # doctest: +SKIP
    >>> clf.classify(["a.jpg", "photos/"], top_k=3)     # doctest: +SKIP
    """

    def __init__(
        self, model: str = DEFAULT_CLASSIFIER, run_options: RunOptions | None = None, **run: Unpack[RunKwargs]
    ):
        self.run_options = RunOptions.of(run_options, **run)
        self.model = ImageModel.load(model, self.run_options, purpose="classify")

    def iter_classify(
        self,
        inputs: Inputs | Iterable[str | Path | ImageError],
        top_k: int = DEFAULT_TOP_K,
        progress: bool | None = False,
        total: int | None = None,
    ) -> Iterator[Classification]:
        """Yield one `Classification` per input as soon as its batch is done (constant memory)."""
        if top_k < 1:
            raise UsageError("top-k must be at least 1")
        sources = expand_inputs(as_input_list(inputs))
        categories = self.model.categories
        for item, _, logits in self.model.iter_outputs(
            sources,
            progress=progress,
            total=total,
            desc="classify",
        ):
            if logits is None:
                yield Classification(item.path, error=item.error)
            else:
                labels, scores = top_k_of(logits, categories, top_k)
                yield Classification(item.path, labels, scores)

    def classify(
        self, inputs: Inputs, top_k: int = DEFAULT_TOP_K, progress: bool | None = False
    ) -> ClassificationResults:
        return ClassificationResults(self.iter_classify(inputs, top_k=top_k, progress=progress))

    def classify_image(
        self, image: Image.Image | bytes, top_k: int = DEFAULT_TOP_K, name: str = "<image>"
    ) -> Classification:
        """Classify one in-memory image (a PIL image or encoded bytes, e.g. an upload). Bytes are decoded
        as `classify` decodes a file (JPEG draft scaling for the network's size): the same scores."""
        if isinstance(image, bytes):
            img = open_image(image, min_size=self.model.preprocessing.resize, name=name)
        else:
            img = image
        pixels = self.model.preprocessing.pixels(img.convert("RGB") if img.mode != "RGB" else img)
        _, logits = self.model.run(pixels[None])
        labels, scores = top_k_of(logits[0], self.model.categories, top_k)
        return Classification(name, labels, scores)


def classify(
    inputs: Inputs,
    model: str = DEFAULT_CLASSIFIER,
    top_k: int = DEFAULT_TOP_K,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    **run: Unpack[RunKwargs],
) -> ClassificationResults:
    """Top-k ImageNet classes for files, folders (recursive) or glob patterns, in input order.

    Unreadable inputs come back as results with `.error` set; they never stop the batch. How the
    network runs: `run_options`, or the keywords device, precision, engine, threads, batch_size, workers.

    >>> r = classify(["samples/coffee.png"], top_k=1)    # doctest: +SKIP
    >>> r[0].labels, round(r[0].scores[0], 2)             # doctest: +SKIP
    (['espresso'], 0.96)
    """
    return Classifier(model, run_options, **run).classify(inputs, top_k=top_k, progress=progress)
