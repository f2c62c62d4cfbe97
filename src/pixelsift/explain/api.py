"""`pixelsift.explain`: for each photo and each of its top-k classes (or a named class), where the
network looked, as a heatmap over the photo, its peak and the box of its hottest region, in the
photo's own pixels; optionally saved as an overlay image.

    >>> results = pixelsift.explain(["cat.jpg"], k=2, save="explained/")     # doctest: +SKIP
    >>> results[0].label, results[0].box, results[0].heatmap.shape           # doctest: +SKIP
    ('tabby', (40, 12, 388, 290), (300, 451))
    >>> results.to_pandas()                                                  # doctest: +SKIP

A registry classifier is explained through its own layers; a model saved by `pixelsift train` through
its backbone and its own classifier (a neural head with any method; a k-NN or forest head, which has
no gradients, with the gradient-free scorecam or eigencam).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from typing_extensions import Unpack

from pixelsift.core.outputs import OutputNames
from pixelsift.core.paths import data_frame
from pixelsift.core.progress import progress_bar
from pixelsift.errors import ImageError, UsageError
from pixelsift.explain.cam import DEFAULT_METHOD, METHODS, CamModel
from pixelsift.explain.overlay import overlay
from pixelsift.imaging.images import expand_inputs, open_image
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_spec_of
from pixelsift.runtime.options import RunKwargs, RunOptions

if TYPE_CHECKING:
    import pandas as pd

HOT = 0.5  # the hottest region: where the map is at least half its peak, around the peak


@dataclass
class Explanation:
    """Where the network looked for one class of one photo (or why the photo could not be used)."""

    path: str
    label: str = ""
    score: float = 0.0  # the class's probability
    rank: int = 0  # the class's place in the model's ranking for this photo (1: its top class)
    method: str = DEFAULT_METHOD
    layer: str = ""
    # (height, width) in [0, 1] over the photo as decoded (a large JPEG decodes smaller; peak and box
    # are in the full photo's pixels)
    heatmap: np.ndarray | None = field(default=None, repr=False)
    peak: tuple[int, int] | None = None  # (x, y) of the hottest pixel
    box: tuple[int, int, int, int] | None = None  # x1, y1, x2, y2 of the hottest region
    saved: str | None = None
    error: str | None = None
    seen: tuple[int, int, int, int] | None = field(default=None, repr=False)  # the crop the network saw

    def picture(self, image: Image.Image) -> Image.Image:
        """The overlay of this explanation on `image` (the photo it was made from)."""
        if self.heatmap is None:
            raise UsageError(f"{self.path}: no heatmap to draw ({self.error})")
        caption = f"{self.label} {self.score:.2f} ({self.method})"
        return overlay(image, self.heatmap, caption, self._box(image), self.seen)

    def _box(self, image: Image.Image) -> tuple[int, int, int, int] | None:
        """The hottest region in `image`'s pixels (it may be a draft-decoded, smaller copy)."""
        if self.box is None:
            return None
        sx, sy = _full_scale(image)
        x1, y1, x2, y2 = self.box
        return round(x1 / sx), round(y1 / sy), round(x2 / sx), round(y2 / sy)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {
            "path": self.path,
            "label": self.label,
            "score": self.score,
            "rank": self.rank,
            "method": self.method,
            "layer": self.layer,
            "peak": list(self.peak) if self.peak else None,
            "box": list(self.box) if self.box else None,
            "saved": self.saved,
        }


class Explanations(list[Explanation]):
    """Explanations in input order (a photo's classes together), failures included."""

    def to_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self]

    def to_pandas(self) -> pd.DataFrame:
        """One row per photo and class: path, label, score, rank, method, layer, peak, box, saved, error."""
        columns = ["path", "label", "score", "rank", "method", "layer", "peak", "box", "saved", "error"]
        rows = [{**e.to_dict(), "error": e.error} for e in self]
        return data_frame({c: [row.get(c) for row in rows] for c in columns})


class Explainer:
    """A network ready to explain: a registry classifier (`model`) or a saved model file (`trained`)."""

    def __init__(
        self,
        model: str | None = None,
        trained: str | os.PathLike[str] | None = None,
        method: str = DEFAULT_METHOD,
        layer: str | None = None,
        run_options: RunOptions | None = None,
    ):
        if method not in METHODS:
            raise UsageError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        if model is not None and trained is not None:
            raise UsageError("give a registry model (-m) or a trained model file (--trained), not both")
        self.method = method
        self.run_options = run_options or RunOptions()
        # imported here: building a network imports torch
        from pixelsift.explain.networks import registry_network, trained_network

        if trained is not None:
            built = trained_network(trained, self.run_options)
        else:
            built = registry_network(
                get_spec_of(model or DEFAULT_CLASSIFIER, ClassifierSpec), self.run_options
            )
        self.name = built.name
        self.categories: list[str] = list(built.categories)
        self.preprocessing: Preprocessing = built.preprocessing
        self._probabilities = built.probabilities
        self.cam = CamModel(
            built.forward, built.body, self.preprocessing.crop, layer or built.cam_layer, built.gradients
        )

    @property
    def layer(self) -> str:
        return self.cam.target.name

    def class_index(self, label: str) -> int:
        if label in self.categories:
            return self.categories.index(label)
        lowered = [c.lower() for c in self.categories]
        if label.lower() in lowered:
            return lowered.index(label.lower())
        close = difflib.get_close_matches(label.lower(), lowered, n=3, cutoff=0.6)
        hint = (
            f" Did you mean: {', '.join(self.categories[lowered.index(c)] for c in close)}?" if close else ""
        )
        raise UsageError(f"{self.name} has no class {label!r}.{hint}")

    def explain_image(
        self,
        image: Image.Image,
        path: str = "image",
        k: int = 1,
        label: str | None = None,
        names: OutputNames | None = None,
    ) -> list[Explanation]:
        """Explanations of an RGB image's top `k` classes, or of the class `label`."""
        if k < 1:
            raise UsageError("-k must be at least 1")
        pixels = self.preprocessing(image)
        probabilities = self._probabilities(pixels)
        order = list(np.argsort(-probabilities, kind="stable"))
        wanted = [self.class_index(label)] if label is not None else order[:k]
        results = []
        for index in wanted:
            heat = self.cam.heatmap(pixels, int(index), self.method)
            full, seen = _to_photo(heat, image, self.preprocessing)
            peak, box = _hottest(full)
            scale_x, scale_y = _full_scale(image)
            result = Explanation(
                path,
                self.categories[index],
                float(probabilities[index]),
                order.index(index) + 1,
                self.method,
                self.layer,
                full,
                (round(peak[0] * scale_x), round(peak[1] * scale_y)),
                (
                    round(box[0] * scale_x),
                    round(box[1] * scale_y),
                    round(box[2] * scale_x),
                    round(box[3] * scale_y),
                ),
            )
            result.seen = seen
            if names is not None:
                stem = f"{Path(path).stem or 'image'}-{_slug(result.label)}-{self.method}"
                target = names.folder / f"{names.claim(stem, ('.png',))}.png"
                result.picture(image).save(target)
                result.saved = str(target)
            results.append(result)
        return results

    def iter_explain(
        self,
        inputs: Iterable[str | os.PathLike[str] | ImageError],
        k: int = 1,
        label: str | None = None,
        save: str | os.PathLike[str] | None = None,
        progress: bool | None = False,
        total: int | None = None,
    ) -> Iterator[Explanation]:
        """Explanations of files, folders and globs, in order; an unreadable input is one result with
        its error, and the rest go on."""
        if label is not None:
            self.class_index(label)  # a bad --class stops before any work
        names = None
        if save is not None:
            names = OutputNames.make(save)
        with progress_bar(total=total, desc="explain", enabled=progress) as bar:
            for item in expand_inputs(inputs):
                bar.update(1)
                if isinstance(item, ImageError):
                    yield Explanation(item.path, error=item.reason)
                    continue
                try:
                    image = open_image(item, min_size=self.preprocessing.resize)
                except ImageError as exc:
                    yield Explanation(str(item), error=exc.reason)
                    continue
                yield from self.explain_image(image, str(item), k, label, names)


def explain(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    model: str | None = None,
    trained: str | os.PathLike[str] | None = None,
    label: str | None = None,
    k: int = 1,
    method: str = DEFAULT_METHOD,
    layer: str | None = None,
    save: str | os.PathLike[str] | None = None,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    **run: Unpack[RunKwargs],
) -> Explanations:
    """Where `model` (a registry classifier, default efficientnet_lite0) or `trained` (a file saved by
    `pixelsift train`) looked for each photo's top `k` classes, or for the class `label`.

    `method`: gradcam (default), gradcam++, hirescam, xgradcam, layercam, eigencam, scorecam; `layer`:
    the layer to look at (default: the model's last convolutional stage); `save`: a folder for the
    overlay images (new files only). How the network runs: `run_options`, or the keywords device,
    precision, threads.
    """
    explainer = Explainer(model, trained, method, layer, RunOptions.of(run_options, **run))
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    return Explanations(explainer.iter_explain(items, k=k, label=label, save=save, progress=progress))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_") or "class"


def _full_scale(image: Image.Image) -> tuple[float, float]:
    """Photo pixels per decoded pixel (a large JPEG is decoded in draft mode)."""
    full = image.info.get("full_size") or image.size
    return full[0] / image.size[0], full[1] / image.size[1]


def _to_photo(
    heat: np.ndarray, image: Image.Image, preprocessing: Preprocessing
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The map over the network's crop, placed over the (decoded) photo (zeros where the crop did not
    look), and that crop's box in the photo."""
    width, height = image.size
    left, top, right, bottom = preprocessing.crop_box(width, height)
    x1, y1 = round(left), round(top)
    x2, y2 = min(width, round(right)), min(height, round(bottom))
    full = np.zeros((height, width), np.float32)
    if x2 > x1 and y2 > y1:
        region = Image.fromarray(heat.astype(np.float32), "F").resize(
            (x2 - x1, y2 - y1), Image.Resampling.BILINEAR
        )
        full[y1:y2, x1:x2] = np.clip(np.asarray(region), 0.0, 1.0)
    return full, (x1, y1, x2, y2)


def _hottest(heat: np.ndarray) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """The peak (x, y) and the box (x1, y1, x2, y2) of the connected region around it where the map
    is at least `HOT` of the peak."""
    from scipy import ndimage

    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    regions, _ = ndimage.label(heat >= HOT * float(heat[y, x]))
    rows, cols = np.nonzero(regions == regions[y, x])
    return (int(x), int(y)), (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
