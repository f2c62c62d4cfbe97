"""What torchvision's classifier and detector records share: a `WeightsEnum` entry read into a record."""

from __future__ import annotations

import re
from typing import Any

from pixelsift.models.records import WeightsFile

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def default_weights(name: str) -> Any:
    """torchvision's DEFAULT weights entry for model `name` (imports torchvision)."""
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def weights_file(weights: Any) -> WeightsFile:
    """The download record of a torchvision weights entry; its file name carries a sha256 prefix."""
    filename = weights.url.rsplit("/", 1)[-1]
    prefix = _HASH_IN_NAME.search(filename)
    return WeightsFile(
        filename=filename,
        url=weights.url,
        hash_prefix=prefix.group(1) if prefix else None,
        size_mb=weights.meta.get("_file_size"),
    )
