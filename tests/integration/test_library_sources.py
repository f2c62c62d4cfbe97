"""The indexer runs every evidence source alike (`library.sources.Source`): a source made here, which
the indexer has never heard of, is computed for new photos in the classifier's pass, caught up for
older ones in one decode each, and written in the indexer's transactions."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from helpers import REPO, write_image
from pixelsift.library import PhotoIndex
from pixelsift.library.sources import Source
from pixelsift.library.store import LibraryStore


class MeanColour:
    """A made-up kind of evidence: each photo's mean colour, kept in the store's meta table."""

    key = "measured mean colour"
    min_size = 32

    def __init__(self) -> None:
        self.prepared: list[tuple[int, int]] = []  # the size of each photo it was given
        self.batches: list[int] = []

    def owed(self, store: LibraryStore) -> list[tuple[int, str]]:
        done = {
            int(k.split(":")[1])
            for (k,) in store.conn.execute("SELECT key FROM meta WHERE key LIKE 'mean:%'")
        }
        return [
            (i, p)
            for i, p in store.conn.execute("SELECT id, path FROM photos WHERE status = 'ok'")
            if i not in done
        ]

    def prepare(self, image: Any) -> Any:
        self.prepared.append(image.size)
        return image.convert("RGB").resize((8, 8))

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        self.batches.append(len(prepared))
        return [tuple(int(v) for v in np.asarray(img).reshape(-1, 3).mean(axis=0)) for img in prepared]

    def write(self, store: LibraryStore, photo_id: int, seq: int, result: Any) -> None:
        store.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"mean:{photo_id}", str(result))
        )


def means(index: PhotoIndex) -> dict[str, str]:
    rows = index.conn.execute(
        "SELECT p.path, m.value FROM photos p JOIN meta m ON m.key = 'mean:' || p.id ORDER BY p.path"
    )
    return dict(rows.fetchall())


def test_a_new_source_is_computed_for_new_photos_and_caught_up_for_old_ones(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    write_image(root / "red.png", size=(96, 64), color=(220, 20, 20))
    write_image(root / "blue.png", size=(96, 64), color=(20, 20, 220))
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")
    source = MeanColour()
    assert isinstance(source, Source)

    report = index.update(root, sources=[source])  # older photos: caught up, each decoded once
    assert report.annotated == {"measured mean colour": 2} and report.added == 0
    assert len(source.prepared) == 2 and source.batches == [2]
    red, blue = (
        tuple(int(v) for v in means(index)[name].strip("()").split(",")) for name in ("red.png", "blue.png")
    )
    assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0]

    shutil.copy(REPO / "samples" / "chelsea.png", root / "cat.png")
    again = MeanColour()
    report = index.update(root, sources=[again])  # a new photo: in the same pass as the classifier
    assert report.added == 1 and "measured mean colour" not in report.annotated
    assert again.prepared == [(451, 300)] and sorted(means(index)) == ["blue.png", "cat.png", "red.png"]
    nothing = MeanColour()
    assert index.update(root, sources=[nothing]).annotated == {} and nothing.prepared == []
