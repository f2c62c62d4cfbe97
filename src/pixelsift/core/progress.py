"""Progress bars on stderr: shown for long runs in a terminal, silent in pipes and tests; and, for a
caller that shows progress its own way (the web page's indexing status), `observed`: every bar
opened in its block also reports (step, done, total) to a callback."""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator
from typing import Any

Listener = Callable[[str, int, "int | None"], None]
_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "pixelsift_progress", default=None
)


@contextlib.contextmanager
def observed(listener: Listener) -> Iterator[None]:
    """Within the block (in this thread), each progress bar also calls `listener(step, done, total)`
    when it opens and as it advances, whether or not the bar is shown."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class _Reported:
    """A bar that also tells the listener of `observed` how far it has got."""

    def __init__(self, bar: Any, desc: str, listener: Listener) -> None:
        self._bar, self._desc, self._listener = bar, desc, listener
        self._done = 0
        listener(desc, 0, bar.total)

    def __enter__(self) -> _Reported:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)
        self._done += n
        self._listener(self._desc, self._done, self._bar.total)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bar, name)


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
    bar = _bar(total, desc, enabled, unit)
    listener = _listener.get()
    return bar if listener is None else _Reported(bar, desc, listener)


def _bar(total: int | None, desc: str, enabled: bool | None, unit: str) -> Any:
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
