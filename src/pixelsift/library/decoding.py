"""One read and one decode per photo for the index: the file's hash, EXIF and size, and each evidence
source's input (`library.sources.Source.prepare`, the classifier's included), all from the same bytes."""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixelsift.core.hashing import sha256_bytes
from pixelsift.imaging.images import open_image, read_file
from pixelsift.library.metadata import PhotoMetadata, read_exif
from pixelsift.library.sources import Source

NO_PIXELS = np.zeros((3, 1, 1), np.uint8)  # the pipeline's row for a decoded photo: sources keep their own


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
    sources: Sequence[Source], needs: Callable[[str], Container[str]] | None = None
) -> Callable[[str], tuple[np.ndarray, Decoded]]:
    """A pipeline decoder that reads each file once: hash, EXIF and size, and each source's input
    (`Source.prepare`, in the decode threads): every source's, or, with `needs`, those whose key
    `needs(path)` holds. The pixels it returns are a placeholder row: the sources compute on their own
    inputs, left on `Decoded.prepared`.

    A source that is `exact` (the classifier) gets the photo decoded at its own `min_size` (JPEG draft
    scaling for that size, exactly as `pixelsift classify` decodes it), so a photo has the same scores
    in the index as in `classify`; the other sources take their input from that decode when it has the
    pixels they need, else from one larger decode of the same bytes."""

    def decode(path: str) -> tuple[np.ndarray, Decoded]:
        data, size, mtime_ns = read_file(path)
        wanted = [s for s in sources if needs is None or s.key in needs(path)]
        rest = max((s.min_size for s in wanted if not s.exact), default=0)
        images: dict[int, Any] = {}
        for own in sorted({s.min_size for s in wanted if s.exact}):
            images[own] = open_image(data, min_size=own or None, name=path)
        shared = next((img for img in images.values() if _has_pixels(img, rest)), None)
        if shared is None:
            shared = open_image(data, min_size=rest or None, name=path)
        info = Decoded(size, mtime_ns, sha256_bytes(data), read_exif(data))
        info.prepared = {s.key: s.prepare(images[s.min_size] if s.exact else shared) for s in wanted}
        return NO_PIXELS, info

    return decode


def _has_pixels(image: Any, min_size: int) -> bool:
    """Whether a (draft) decode's shorter side reaches `min_size`, or the photo's own size if smaller."""
    return min(image.size) >= min(min_size, *image.info.get("full_size", image.size))
