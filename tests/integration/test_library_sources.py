"""The indexer runs every evidence source alike (`library.sources.Source`): a source made here, which
the indexer has never heard of, is computed for new photos in the classifier's pass, caught up for
older ones in one decode each, and written in the indexer's transactions."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import REPO, write_image
from pixelsift.library import PhotoIndex
from pixelsift.library.sources import Source
from pixelsift.library.store import LibraryStore


class MeanColour:
    """A made-up kind of evidence: each photo's mean colour, kept in the store's meta table."""

    key = "measured mean colour"
    min_size = 32
    concurrent = False  # the indexer runs one batch at a time through it
    exact = False  # it takes the photo from the run's shared decode

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


class Lanes(MeanColour):
    """MeanColour that notes where and how many at once its batches are computed."""

    def __init__(self, key: str, concurrent: bool, meet: int = 0) -> None:
        super().__init__()
        self.key, self.concurrent = key, concurrent
        self.threads: set[str] = set()
        self.active = self.most = self.calls = 0
        self.lock = threading.Lock()
        self.meeting = threading.Barrier(meet, timeout=20) if meet else None

    def compute(self, prepared: Sequence[Any]) -> list[Any]:
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.active += 1
            self.most = max(self.most, self.active)
            self.calls += 1
            first = self.calls <= 2
        try:
            if self.meeting is not None and first:
                self.meeting.wait()  # the first two batches meet here: both lanes compute at once
            else:
                time.sleep(0.05)  # room for an overlap, were one allowed
            return super().compute(prepared)
        finally:
            with self.lock:
                self.active -= 1


def test_sources_compute_in_the_classifiers_lanes_several_batches_at_once_unless_not_concurrent(
    tmp_path: Path,
) -> None:
    """With two streams, a concurrent source computes two batches at once in the compute lanes (where
    the classifier runs on the same batch); a source that is not concurrent gets one batch at a time,
    in the indexer's writing thread.
    The same holds in the catch-up pass."""
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(8):
        write_image(root / f"p{i}.png", size=(64, 48), color=(30 * i, 90, 200 - 20 * i))
    together = Lanes("together", concurrent=True, meet=2)
    alone = Lanes("alone", concurrent=False)
    index = PhotoIndex(tmp_path / "i.db")
    report = index.update(
        root, detector="none", sources=[together, alone], engine="torch", streams=2, batch_size=2
    )
    assert report.added == 8 and len(means(index)) == 8
    assert together.most == 2 and alone.most == 1
    assert together.threads and all(name.startswith("pixelsift-lane") for name in together.threads)
    assert alone.threads == {threading.current_thread().name}

    later = [Lanes("later together", concurrent=True, meet=2), Lanes("later alone", concurrent=False)]
    index.conn.execute("DELETE FROM meta WHERE key LIKE 'mean:%'")
    index.conn.commit()
    caught = index.update(root, sources=later, streams=2, batch_size=2)  # owed: the catch-up pass
    assert caught.annotated == {"later together": 8, "later alone": 8}
    assert later[0].most == 2 and later[1].most == 1


def test_each_photo_is_decoded_once_for_the_classifier_and_every_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One decode per photo and run (counted), a large JPEG in draft mode: the classifier and each source
    whose size the draft covers take their input from the same decoded image."""
    import pixelsift.library.decoding as decoding

    root = tmp_path / "photos"
    root.mkdir()
    write_image(root / "big.jpg", size=(2400, 1600), color=(200, 40, 40))
    write_image(root / "small.png", size=(96, 64), color=(40, 40, 200))
    decoded: list[tuple[int, int]] = []
    real = decoding.open_image

    def counting(*args: Any, **kwargs: Any) -> Any:
        image = real(*args, **kwargs)
        decoded.append(image.size)
        return image

    monkeypatch.setattr(decoding, "open_image", counting)
    first, second = MeanColour(), MeanColour()
    second.key, second.min_size = "another source", 200
    report = PhotoIndex(tmp_path / "i.db").update(root, detector="none", sources=[first, second])
    assert report.added == 2 and len(decoded) == 2, decoded
    assert sorted(first.prepared) == sorted(second.prepared) == sorted(decoded)
    assert max(decoded) < (2400, 1600), "the large JPEG was decoded in draft mode"


def test_the_classifier_is_a_source_and_catches_up_in_the_same_decode_as_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A photo that lost the classifier's results is classified again in the one pass that also catches
    up another source, each photo read once; its classes are replaced, not doubled, and its features
    are the ones the first run stored."""
    import pixelsift.library.decoding as decoding
    from pixelsift.library.rows import FEATURES, PROBS

    root = tmp_path / "photos"
    root.mkdir()
    write_image(root / "red.png", size=(96, 64), color=(220, 20, 20))
    shutil.copy(REPO / "samples" / "chelsea.png", root / "cat.png")
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")
    cat = index.conn.execute("SELECT id FROM photos WHERE path = 'cat.png'").fetchone()[0]

    def classes() -> list[tuple[str, float]]:
        return [(lab["label"], lab["score"]) for lab in index.photo(cat)["labels"] if lab["kind"] == "class"]

    before, features = classes(), index.store.vectors_of(FEATURES, [cat])[0][1]
    lost = "DELETE FROM embeddings WHERE photo_id = ? AND space IN (?, ?)"
    index.conn.execute(lost, (cat, FEATURES, PROBS))
    index.conn.commit()
    read: list[str] = []
    real = decoding.read_file

    def reading(path: Any) -> Any:
        read.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(decoding, "read_file", reading)
    source = MeanColour()
    report = index.update(root, sources=[source])
    assert report.annotated == {"classified (efficientnet_lite0)": 1, "measured mean colour": 2}
    assert sorted(read) == ["cat.png", "red.png"], "each photo read once for both sources"
    after = classes()
    assert [name for name, _ in after] == [name for name, _ in before] and len(before) == 5
    assert [p for _, p in after] == pytest.approx([p for _, p in before], abs=1e-4)
    assert index.store.vectors_of(FEATURES, [cat])[0][1] == pytest.approx(features, abs=1e-4)
    assert index.search("cat")[0].relative_path == "cat.png"
