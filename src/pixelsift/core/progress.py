"""Progress bars on stderr: shown for long runs in a terminal, silent in pipes and tests."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


def progress_bar(
    total: int | None = None, desc: str = "", enabled: bool | None = None, unit: str = "img"
) -> Any:
    """A tqdm bar on stderr. `enabled=None` shows it only when stderr is a terminal.

    Used as a context manager: `with progress_bar(total=n) as bar: bar.update(k)`.
    """
    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=disable,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        smoothing=0.1,
    )
