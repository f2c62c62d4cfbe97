"""One read and one decode per photo for the index: the classifier's pixels, the file's hash, EXIF and
size, and each evidence source's input (`library.sources.Source.prepare`), all from the same bytes."""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixelsift.core.hashing import sha256_bytes
from pixelsift.imaging.images import open_image, read_file
from pixelsift.library.metadata import PhotoMetadata, read_exif
from pixelsift.library.sources import Source


@dataclass
class Decoded:
    """What the index reads from one photo file, besides the model's pixels."""

    size: int
    mtime_ns: int
    sha256: str
    metadata: PhotoMetadata
    prepared: dict[str, Any] = field(default_factory=dict)  # source key -> its input from this decode
    found: dict[str, Any] = field(default_factory=dict)  # source key -> its result (or a batch job's)


def photo_decoder(
    preprocess: Any,
    sources: Sequence[Source] = (),
    needs: Callable[[str], Container[str]] | None = None,
) -> Callable[[str], tuple[np.ndarray, Decoded]]:
    """A pipeline decoder that reads each file once: pixels for the model, hash, EXIF and size, and
    each source's input (`Source.prepare`, in the decode threads): every source's, or, with `needs`,
    those whose key `needs(path)` holds.

    `preprocess` (the model's `Preprocessing`, or None) gets the photo decoded exactly as
    `pixelsift classify` decodes it (JPEG draft scaling for the model's own size), so a photo has the
    same scores in the index as in `classify`; when a source needs more pixels (`Source.min_size`)
    than that draft gave, the sources get one larger decode of the same bytes."""
    model_size = preprocess.resize if preprocess is not None else None
    min_size = max((s.min_size for s in sources), default=0) or None

    def decode(path: str) -> tuple[np.ndarray, Decoded]:
        data, size, mtime_ns = read_file(path)
        img = open_image(data, min_size=model_size or min_size, name=path)
        metadata = read_exif(data)
        pixels = preprocess.pixels(img) if preprocess is not None else np.zeros((3, 1, 1), np.uint8)
        bigger = model_size is not None and min_size is not None and min_size > model_size
        if bigger and min(img.size) < min(min_size, *img.info.get("full_size", img.size)):
            img = open_image(data, min_size=min_size, name=path)  # drafted too small for the sources
        info = Decoded(size, mtime_ns, sha256_bytes(data), metadata)
        wanted = [s for s in sources if needs is None or s.key in needs(path)]
        info.prepared = {source.key: source.prepare(img) for source in wanted}
        return pixels, info

    return decode
