"""What one index run is asked (`IndexOptions`: one object from the CLI, the API and the page to
`Indexer` and `reconcile.Reconciler`) and what it did (`IndexReport`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pixelsift.library.sources import Source
from pixelsift.runtime.options import RunOptions


@dataclass
class IndexOptions:
    """How to index. `detector`: "auto" (the default detector when one is available), "none" or a name;
    None = what the library used last time (else "auto"). `labelers`: files saved by `pixelsift train`,
    added to the ones the library remembers."""

    model: str | None = None
    detector: str | None = None
    labelers: Sequence[str | os.PathLike[str]] = ()
    text_image: str | None = None  # "auto", "none" or a model name; None = last time's (else "auto")
    exclude: Sequence[str] = ()
    follow_links: bool = False  # a symbolic link out of the library's folder is followed too
    run_options: RunOptions = field(default_factory=RunOptions)  # the classifier's, detector's, labelers'
    progress: bool | None = False
    agnostic_nms: bool = False  # the detector keeps one box per object, whatever its classes
    from_batch: Sequence[str | os.PathLike[str]] = ()  # `pixelsift batch` output folders to take results from
    ocr: bool | None = None  # read the text in photos; None = what the library did last time (else no)
    sources: Sequence[Source] = ()  # more evidence sources (`library.sources.Source`) for every photo


@dataclass
class IndexReport:
    """What one `update` did."""

    root: str
    photos: int = 0  # photos found in the folder
    unchanged: int = 0
    added: int = 0
    updated: int = 0  # changed content, recomputed
    moved: int = 0
    copied: int = 0
    touched: int = 0  # mtime changed, content did not
    deleted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) newly failed this run
    still_failed: int = 0  # failed in an earlier run and unchanged since (not retried)
    annotated: dict[str, int] = field(default_factory=dict)  # catch-up pass -> photos done
    seconds: float = 0.0

    def summary(self, with_root: bool = True) -> str:
        """ "indexed ROOT: 3 photos, 1 new, ... in 0.4 s" (`with_root=False`: without "indexed ROOT: ",
        for a page that never shows the server's paths)."""
        parts = [
            f"{self.photos} photos",
            f"{self.added} new",
            f"{self.updated} changed",
            f"{self.moved} moved",
            f"{self.copied} copied",
            f"{self.deleted} removed",
            f"{self.unchanged + self.touched} unchanged",
        ]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.still_failed:
            parts.append(f"{self.still_failed} failed earlier (not retried until they change)")
        parts += [f"{n} {what}" for what, n in self.annotated.items() if n]
        counts = ", ".join(parts) + f" in {self.seconds:.1f} s"
        return f"indexed {self.root}: {counts}" if with_root else counts

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["failed"] = [{"path": p, "error": e} for p, e in self.failed]
        return out
