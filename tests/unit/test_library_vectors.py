"""Nearest-neighbour search over an index's vectors: exact, catching up with the database, approximate."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from pixelsift.library import vectors
from pixelsift.library.metadata import PhotoMetadata
from pixelsift.library.rows import FEATURES, OK, PhotoRecord
from pixelsift.library.store import LibraryStore
from pixelsift.library.vectors import VectorCache


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // 50), dim))
    return (centres[rng.integers(0, len(centres), n)] + rng.normal(scale=0.3, size=(n, dim))).astype(
        np.float32
    )


def add_photos(store: LibraryStore, vecs: np.ndarray, start: int = 0) -> list[int]:
    ids = []
    with store.transaction():
        seq = store.next_seq()
        for i, v in enumerate(vecs, start):
            record = PhotoRecord(f"p{i}.jpg", 1, 1, None, OK, None, PhotoMetadata(), None, time.time())
            photo_id = store.upsert_photo(record)
            store.put_vector(photo_id, FEATURES, seq, v)
            ids.append(photo_id)
    return ids


def brute_force(all_vectors: dict[int, np.ndarray], q: np.ndarray, k: int) -> list[tuple[int, float]]:
    unit_q = q / np.linalg.norm(q)
    scored = [(i, float(v @ unit_q / np.linalg.norm(v))) for i, v in all_vectors.items()]
    return sorted(scored, key=lambda t: (-t[1], t[0]))[:k]


@pytest.fixture
def db(tmp_path: Path, home: Path):  # type: ignore[no-untyped-def]
    store = LibraryStore.open(tmp_path / "v.db")
    yield tmp_path / "v.db", store
    store.close()


def test_exact_search_matches_brute_force_and_excludes(db) -> None:  # type: ignore[no-untyped-def]
    path, store = db
    vecs = clustered(300, 32, 0)
    ids = add_photos(store, vecs)
    cache = VectorCache(store, path, "features")
    q = vecs[5] + 0.01
    expected = brute_force(dict(zip(ids, vecs, strict=True)), q, 10)
    got = cache.search(q, 10)
    assert [i for i, _ in got] == [i for i, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)
    assert ids[5] not in [i for i, _ in cache.search(q, 10, exclude={ids[5]})]
    allowed = set(ids[100:120])
    got = cache.search(q, 5, allowed=allowed)
    assert {i for i, _ in got} <= allowed
    expected = brute_force({i: vecs[ids.index(i)] for i in allowed}, q, 5)
    assert [i for i, _ in got] == [i for i, _ in expected]


def test_a_cache_behind_the_database_still_answers_for_the_database(db) -> None:  # type: ignore[no-untyped-def]
    """New, re-computed and deleted photos since the cache was built (a search during indexing)."""
    path, store = db
    vecs = clustered(200, 16, 1)
    ids = add_photos(store, vecs)
    VectorCache(store, path, "features").load()  # the cache now holds 200 vectors
    cache = VectorCache(store, path, "features")
    cache.load()
    built_at = cache.state.seq if cache.state else None

    q = np.random.default_rng(3).normal(size=16).astype(np.float32)
    newcomer = add_photos(store, [q * 5], start=1000)[0]  # identical direction: the best match
    changed = ids[0]
    with store.transaction():
        seq = store.next_seq()
        store.put_vector(changed, FEATURES, seq, q)
        store.delete_photos([ids[1]])
    truth = {i: v for i, v in zip(ids, vecs, strict=True) if i != ids[1]}
    truth[changed], truth[newcomer] = q, q * 5
    got = cache.search(q, 8)
    assert cache.state is not None and cache.state.seq == built_at, "answered without rebuilding"
    assert [i for i, _ in got] == [i for i, _ in brute_force(truth, q, 8)]
    assert {changed, newcomer} <= {i for i, _ in got[:2]}
    deleted_q = vecs[1]
    assert ids[1] not in [i for i, _ in cache.search(deleted_q, 5)]


def test_approximate_index_above_the_threshold_rescored_exactly(db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path, store = db
    monkeypatch.setattr(vectors, "ANN_MIN_VECTORS", 500)
    vecs = clustered(2000, 64, 2)
    ids = add_photos(store, vecs)
    cache = VectorCache(store, path, "features")
    cache.load()
    assert (
        cache.state is not None and cache.state.ann == "faiss-ivf" and (cache.folder / "ann.faiss").is_file()
    )
    truth = dict(zip(ids, vecs, strict=True))
    queries = clustered(30, 64, 9)
    recall = []
    for q in queries:
        got = cache.search(q, 10)
        expected = brute_force(truth, q, 10)
        recall.append(len({i for i, _ in got} & {i for i, _ in expected}) / 10)
        for photo_id, score in got:  # scores are exact cosines, not 8-bit approximations
            v = truth[photo_id]
            assert score == pytest.approx(float(v @ q / np.linalg.norm(v) / np.linalg.norm(q)), abs=1e-5)
    assert np.mean(recall) >= 0.9


def test_approximate_index_build_memory_does_not_grow_with_the_library(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The build reads the cache file a block at a time and trains on a capped sample: what numpy
    allocates stays a few blocks, not the library (faiss's codes, one byte per value, are its own)."""
    import tracemalloc

    pytest.importorskip("faiss")
    monkeypatch.setattr(vectors, "ANN_BLOCK_ROWS", 4096)
    monkeypatch.setattr(vectors, "ANN_TRAIN_MAX", 2048)
    matrix = np.lib.format.open_memmap(tmp_path / "vectors.npy", "w+", np.float32, (120_000, 64))
    for start in range(0, 120_000, 20_000):
        matrix[start : start + 20_000] = clustered(20_000, 64, start)
    matrix.flush()
    del matrix
    file_mb = (tmp_path / "vectors.npy").stat().st_size / 2**20  # 29 MB
    tracemalloc.start()
    try:
        assert vectors._build_ann(tmp_path, tmp_path / "vectors.npy") == "faiss-ivf"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a block (1 MB), the capped sample (0.5 MB) and the sampling's bookkeeping; the whole file is
    # 29 MB, and an uncapped sample (30 vectors per list, 1,385 lists) would be 10.6 MB
    assert peak / 2**20 < 8 < file_mb / 3
    import faiss

    index = faiss.read_index(str(tmp_path / "ann.faiss"))
    assert index.ntotal == 120_000


def test_matrix_file_reads_the_rows_it_is_asked_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = clustered(1000, 8, 5)
    np.save(tmp_path / "m.npy", data)
    with vectors._MatrixFile(tmp_path / "m.npy") as rows:
        picks = np.array([0, 3, 511, 512, 999])
        assert np.array_equal(rows.pick(picks), data[picks])
        assert np.array_equal(np.concatenate([b for _, b in rows.blocks(300)]), data)


def test_an_unwritable_cache_folder_falls_back_to_memory(db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path, store = db
    vecs = clustered(50, 8, 4)
    ids = add_photos(store, vecs)
    cache = VectorCache(store, path, "features")
    blocker = cache.folder.parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the cache folder should be")
    got = cache.search(vecs[7], 1)
    assert got[0][0] == ids[7] and got[0][1] == pytest.approx(1.0)
