"""JSON that is always valid, for the CLI's `--format json` and the web API alike: numpy types as
numbers and lists, NaN and infinities as null, and a file name that is not UTF-8 with `\\xNN` escapes
(see `core.paths`)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from pixelsift.core.paths import path_text


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return path_text(str(obj))


def json_ready(obj: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers (Python would write `NaN`); text is
    made valid UTF-8."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {json_ready(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, str):
        return path_text(obj)  # JSON is UTF-8: a name that is not is written with `\\xNN` escapes
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    """Valid JSON whatever the values: numpy types converted, NaN and infinities as null."""
    return json.dumps(
        json_ready(obj), indent=indent, default=_json_default, ensure_ascii=False, allow_nan=False
    )
