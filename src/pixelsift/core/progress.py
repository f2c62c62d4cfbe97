"""Progress bars on stderr: shown for long runs in a terminal, silent in pipes and tests."""

from __future__ import annotations

import sys
from typing import Any


class _NoBar:
    """What a hidden bar is: it counts, and shows nothing (and costs no tqdm import)."""

    def __init__(self, total: int | None) -> None:
        self.total, self.n = total, 0

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        return None

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self) -> None:
        return None


def progress_bar(
    total: int | None = None, desc: str = "", enabled: bool | None = None, unit: str = "img"
) -> Any:
    """A tqdm bar on stderr. `enabled=None` shows it only when stderr is a terminal.

    Used as a context manager: `with progress_bar(total=n) as bar: bar.update(k)`.
    """
    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    if disable:
        return _NoBar(total)
    # imported here: tqdm.auto brings asyncio and importlib.metadata (~70 ms), which a run that shows
    # no bar (a pipe, an unchanged re-index, every test) does not need
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        smoothing=0.1,
    )


def write_line(text: str) -> None:
    """One line on stderr, above any progress bar on show: the bar is cleared, the line written and
    the bar drawn again below it, never a message in the middle of a bar's line."""
    tqdm_module = sys.modules.get("tqdm")  # a bar on show means tqdm is imported; else nothing to clear
    bars = getattr(getattr(tqdm_module, "tqdm", None), "_instances", None)
    if tqdm_module is not None and bars:
        tqdm_module.tqdm.write(text, file=sys.stderr)
        sys.stderr.flush()
    else:
        print(text, file=sys.stderr, flush=True)
