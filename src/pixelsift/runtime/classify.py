"""Top-k ImageNet classification of any number of photos.

>>> results = classify("samples/chelsea.png", top_k=3)      # doctest: +SKIP
>>> results[0].labels
['tiger cat', 'Egyptian cat', 'tabby']
>>> results.to_pandas()                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import Unpack

from pixelsift.core.arrays import softmax, top_k_indices
from pixelsift.errors import ImageError, UsageError
from pixelsift.imaging.images import expand_inputs, open_image
from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.loaded import ImageModel
from pixelsift.runtime.options import RunKwargs, RunOptions

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

Inputs = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


@dataclass
class Classification:
    """The top-k classes of one image (best first), or the reason it could not be read."""

    path: str
    labels: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    error: str | None = None

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.scores):
            raise ValueError(f"{len(self.labels)} labels but {len(self.scores)} scores")

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        preds = [{"label": lab, "score": s} for lab, s in zip(self.labels, self.scores, strict=True)]
        return {"path": self.path, "predictions": preds}

    def to_pandas(self) -> pd.DataFrame:
        """The seed's table: one row per class, columns "Class" and "Probability score"."""
        import pandas as pd

        return pd.DataFrame({"Class": self.labels, "Probability score": self.scores})


class ClassificationResults(list[Classification]):
    """A list of `Classification`s in input order, failures included."""

    @property
    def failures(self) -> list[Classification]:
        return [r for r in self if not r.ok]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]

    def to_pandas(self) -> pd.DataFrame:
        """Long format, one row per (path, rank, label, score); a failed input is one row with its error."""
        import pandas as pd

        rows: list[dict[str, Any]] = []
        for r in self:
            if not r.ok:
                rows.append({"path": r.path, "rank": None, "label": None, "score": None, "error": r.error})
            for rank, (label, score) in enumerate(zip(r.labels, r.scores, strict=True), start=1):
                rows.append({"path": r.path, "rank": rank, "label": label, "score": score, "error": None})
        frame = pd.DataFrame(rows, columns=["path", "rank", "label", "score", "error"])
        return frame.astype({"rank": "Int64"})


def top_classes(
    probabilities: np.ndarray, categories: tuple[str, ...], k: int
) -> tuple[list[str], list[float]]:
    """The k most probable class names and their probabilities, best first (ties by class index)."""
    best = top_k_indices(probabilities, k)
    return [categories[i] for i in best], [float(probabilities[i]) for i in best]


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
        self.model = ImageModel.load(model, self.run_options)

    def iter_classify(
        self,
        inputs: Inputs | Iterable[str | Path | ImageError],
        top_k: int = 5,
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
        self, inputs: Inputs, top_k: int = 5, progress: bool | None = False
    ) -> ClassificationResults:
        return ClassificationResults(self.iter_classify(inputs, top_k=top_k, progress=progress))

    def classify_image(
        self, image: Image.Image | bytes, top_k: int = 5, name: str = "<image>"
    ) -> Classification:
        """Classify one in-memory image (a PIL image or encoded bytes, e.g. an upload)."""
        img = image if not isinstance(image, bytes) else open_image(image, name=name)
        pixels = self.model.preprocessing(img.convert("RGB") if img.mode != "RGB" else img)
        _, logits = self.model.run(pixels[None])
        labels, scores = top_k_of(logits[0], self.model.categories, top_k)
        return Classification(name, labels, scores)


def top_k_of(logits: np.ndarray, categories: tuple[str, ...], k: int) -> tuple[list[str], list[float]]:
    return top_classes(softmax(logits), categories, k)


def classify(
    inputs: Inputs,
    model: str = DEFAULT_CLASSIFIER,
    top_k: int = 5,
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
