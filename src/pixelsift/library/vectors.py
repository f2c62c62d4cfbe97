"""Nearest-neighbour search over a library's vectors, exact by default, approximate when it is large.

The SQLite file is the truth; searching reads a derived cache instead of every BLOB: a float32 matrix of
unit vectors (`vectors.npy`, memory-mapped) and their photo ids, rebuilt from the database when it has
moved on, plus, for a library of `ANN_MIN_VECTORS` photos or more, an approximate index (faiss IVF,
chosen by measurement: see benchmarks/bench_library.py and the README). The cache lives in
`$PIXELSIFT_HOME/library-cache/`; deleting it costs one rebuild, never data.

A cache a little behind the database (a search while `pixelsift index` runs) is still exact: vectors
written since the cache was built are read from SQLite and scored directly, and results whose photo was
deleted or re-computed since are dropped, so the answer is always that of the database right now.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.config import get_settings
from pixelsift.core.arrays import l2_normalize, top_k_indices
from pixelsift.core.hashing import short_digest
from pixelsift.library.store import LibraryStore

log = logging.getLogger("pixelsift")

# Measured on 2 busy CPU cores (benchmarks/bench_library.py): an exact scan of 1280-d float32 vectors
# costs about 0.35 ms per 1,000 photos (memory bound: 36 ms for 100,000, 330 ms for a million), so up
# to 50,000 photos it answers in ~20 ms; above, an IVF index with 8-bit codes keeps it near 20 ms.
ANN_MIN_VECTORS = 50_000
# A cache this far behind the database is rebuilt rather than topped up at every search.
STALE_REBUILD_FRACTION = 0.05
STALE_REBUILD_MIN = 2_000
# The approximate index's build reads the cache in blocks of this many rows (40 MB at 1280-d) and
# trains on at most ANN_TRAIN_MAX vectors (160 MB at 1280-d): see _build_ann.
ANN_BLOCK_ROWS = 8_192
ANN_TRAIN_MAX = 32_768


@dataclass
class CacheState:
    seq: int  # the database's write sequence number the cache was built at
    count: int
    dim: int
    ann: str | None  # "faiss-ivf" or None (exact only)


class VectorCache:
    """The vectors of one space ("features", "clip" or "probs") of one library, ready for search.

    `normalize`: vectors are kept as unit vectors for cosine search (False for the classifier's
    probabilities, which word search sums as they are; such a cache never builds an ANN index)."""

    def __init__(self, store: LibraryStore, db_path: Path, space: str, normalize: bool = True):
        self.store = store
        self.space = space
        self.normalize = normalize
        library_id = store.settings().library_id or ""
        key = short_digest(f"{library_id}:{Path(db_path).resolve()}")
        self.folder = get_settings().home / "library-cache" / key / space
        self.ids: np.ndarray = np.zeros(0, np.int64)
        self.vectors: np.ndarray = np.zeros((0, 0), np.float32)
        self.state: CacheState | None = None
        self.ann: Any = None

    # ------------------------------------------------------------------------------------- building
    def db_seq(self) -> int:
        return self.store.seq()

    def _read_state(self) -> CacheState | None:
        try:
            data = json.loads((self.folder / "state.json").read_text())
            return CacheState(**data)
        except (OSError, ValueError, TypeError):
            return None

    def load(self, eager: bool = False) -> None:
        """Open the cache, (re)building it when missing or far behind the database.

        `eager` (after indexing): bring an exact-search cache fully up to date now; an approximate index
        is still only rebuilt once the library has changed by a few percent, because that takes minutes.
        """
        state = self._read_state()
        if state is not None:
            behind = 0
            if state.seq != self.db_seq():
                behind = self.store.count_vectors_since(self.space, state.seq)
                behind += abs(self.store.count_vectors(self.space) - state.count)
            limit = max(STALE_REBUILD_MIN, STALE_REBUILD_FRACTION * state.count)
            if eager and not state.ann:
                limit = 0
            if behind <= limit:
                try:
                    self._open(state)
                    return
                except (OSError, ValueError) as exc:
                    log.info("vector cache unreadable (%s); rebuilding", exc)
        self.rebuild()

    def _open(self, state: CacheState) -> None:
        self.ids = np.load(self.folder / "ids.npy")
        self.vectors = np.load(self.folder / "vectors.npy", mmap_mode="r")
        if len(self.ids) != state.count or (state.count and self.vectors.shape != (state.count, state.dim)):
            raise ValueError("cache files do not match their state")
        self.ann = _load_ann(self.folder, state) if state.ann else None
        self.state = state

    def rebuild(self) -> None:
        """Write the cache from the database (atomically: a reader sees the old or the new one).

        When the cache folder cannot be written (a read-only home), the vectors are held in memory."""
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.space}-", dir=self.folder.parent))
        except OSError as exc:
            log.info("cannot write the vector cache in %s (%s); searching from memory", self.folder, exc)
            self._load_in_memory()
            return
        state = self._write(tmp)
        _replace_folder(tmp, self.folder)
        self._open(state)

    def _read_all(self) -> tuple[int, np.ndarray, np.ndarray | None, int]:
        """(seq, ids, unit vectors (or None when there are none), count), read consistently."""
        # One read transaction: ids, vectors and seq agree even while an indexer commits.
        with self.store.snapshot():
            seq = self.db_seq()
            blocks = list(self.store.iter_vector_blocks(self.space))
        ids = np.array([i for block_ids, _ in blocks for i in block_ids], np.int64)
        vectors = self._prepare(np.concatenate([m for _, m in blocks])) if blocks else None
        return seq, ids, vectors, len(ids)

    def _load_in_memory(self) -> None:
        seq, ids, vectors, count = self._read_all()
        self.ids = ids
        self.vectors = vectors if vectors is not None else np.zeros((0, 0), np.float32)
        self.ann = None
        self.state = CacheState(seq=seq, count=count, dim=self.vectors.shape[1] if count else 0, ann=None)

    def _write(self, tmp: Path) -> CacheState:
        """Stream the vectors from the database into `tmp` (constant memory: blocks are appended to the
        file, never held or mapped together), then the ANN index."""
        with self.store.snapshot():
            seq = self.db_seq()
            count = self.store.count_vectors(self.space)
            ids = np.zeros(count, np.int64)
            dim = 0
            row = 0
            with open(tmp / "vectors.npy", "wb") as out:
                for block_ids, block in self.store.iter_vector_blocks(self.space):
                    prepared = np.ascontiguousarray(self._prepare(block), dtype="<f4")
                    if row == 0:
                        dim = prepared.shape[1]
                        header = {"descr": "<f4", "fortran_order": False, "shape": (count, dim)}
                        np.lib.format.write_array_header_1_0(out, header)
                    out.write(prepared.tobytes())
                    ids[row : row + len(block_ids)] = block_ids
                    row += len(block_ids)
        if row == 0:
            np.save(tmp / "vectors.npy", np.zeros((0, 0), np.float32))
        np.save(tmp / "ids.npy", ids)
        ann = None
        if count >= ANN_MIN_VECTORS and self.normalize:
            ann = _build_ann(tmp, tmp / "vectors.npy")
        state = CacheState(seq=seq, count=count, dim=dim, ann=ann)
        (tmp / "state.json").write_text(json.dumps(state.__dict__))
        return state

    # -------------------------------------------------------------------------------------- searching
    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: set[int] | None = None,
        exclude: frozenset[int] | set[int] = frozenset(),
    ) -> list[tuple[int, float]]:
        """The k photos whose vectors are closest to `query` (cosine), as (photo id, score), best first.

        `allowed`: only these photo ids (filters); `exclude`: never these (the query photo itself).
        """
        if self.state is None:
            self.load()
        assert self.state is not None
        q = l2_normalize(np.asarray(query, np.float32).reshape(-1))
        changed_ids, changed_vectors = self._changed_since(self.state.seq)
        skip = set(exclude) | set(changed_ids.tolist())
        found: dict[int, float] = {}
        if len(changed_ids):
            scores = changed_vectors @ q
            for i in top_k_indices(scores, k + len(exclude)):
                found[int(changed_ids[i])] = float(scores[i])
        found.update(self._search_cache(q, k, allowed, skip))
        alive = self._alive(list(found), allowed)
        ranked = sorted(
            ((i, s) for i, s in found.items() if i in alive and i not in exclude), key=lambda t: (-t[1], t[0])
        )
        return ranked[:k]

    def _search_cache(
        self, q: np.ndarray, k: int, allowed: set[int] | None, skip: set[int]
    ) -> dict[int, float]:
        if not len(self.ids):
            return {}
        if allowed is not None and len(allowed) <= max(50_000, len(self.ids) // 20):
            rows = np.searchsorted(self.ids, np.fromiter(allowed, np.int64))
            rows = rows[(rows < len(self.ids))]
            rows = rows[np.isin(self.ids[rows], np.fromiter(allowed, np.int64))]
            scores = self.vectors[np.sort(rows)] @ q
            order = np.sort(rows)
            best = top_k_indices(scores, k + len(skip))
            return {
                int(self.ids[order[i]]): float(scores[i]) for i in best if int(self.ids[order[i]]) not in skip
            }
        want = k + len(skip)
        while True:
            ids, scores = self._nearest(q, want)
            hits = {int(i): float(s) for i, s in zip(ids, scores, strict=True) if int(i) not in skip}
            if allowed is not None:
                hits = {i: s for i, s in hits.items() if i in allowed}
            dead = len(hits) - len(self._alive(list(hits), None))
            if len(hits) - dead >= k or want >= len(self.ids):
                return hits
            want = min(len(self.ids), want * 4)

    def _nearest(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.ann is not None:
            rows = _ann_search(self.ann, q, max(k * RERANK_FACTOR, 100))
            scores = np.asarray(self.vectors[np.sort(rows)] @ q)
            rows = np.sort(rows)
            best = top_k_indices(scores, k)
            return self.ids[rows[best]], scores[best]
        scores = np.asarray(self.vectors @ q)
        best = top_k_indices(scores, k)
        return self.ids[best], scores[best]

    def _changed_since(self, seq: int) -> tuple[np.ndarray, np.ndarray]:
        if seq == self.db_seq():
            return np.zeros(0, np.int64), np.zeros(
                (0, max(self.state.dim if self.state else 0, 1)), np.float32
            )
        rows = self.store.vectors_since(self.space, seq)
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 1), np.float32)
        return np.array([i for i, _ in rows], np.int64), self._prepare(np.stack([v for _, v in rows]))

    def _prepare(self, block: np.ndarray) -> np.ndarray:
        return l2_normalize(block) if self.normalize else np.asarray(block, np.float32)

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every vector in this space now: the cache, with the rows written since it
        was built put in. Deleted photos may still be in it (check results with `store.alive`)."""
        if self.state is None:
            self.load()
        assert self.state is not None
        changed_ids, changed_vectors = self._changed_since(self.state.seq)
        if not len(changed_ids):
            return self.ids, self.vectors
        if not len(self.ids):
            return changed_ids, changed_vectors
        keep = ~np.isin(self.ids, changed_ids)
        ids = np.concatenate([self.ids[keep], changed_ids])
        return ids, np.concatenate([np.asarray(self.vectors[keep]), changed_vectors])

    def _alive(self, ids: list[int], allowed: set[int] | None) -> set[int]:
        """Which of `ids` are indexed photos right now (deleted and failed ones are not)."""
        alive = self.store.alive(ids)
        return alive if allowed is None else alive & allowed


def _replace_folder(new: Path, target: Path) -> None:
    """Swap `new` into `target`'s place; a concurrent reader keeps the files it already opened."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=".old-", dir=target.parent))
        os.replace(target, old / "x")
    os.replace(new, target)
    if old is not None:
        import shutil

        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------- approximate index
def _ivf_lists(count: int) -> int:
    """Inverted lists for `count` vectors: 4 sqrt(N), 4,000 for a million. Measured at a million on 2
    cores: 2 sqrt(N) halves the build (3.5 instead of 7.5 minutes) but doubles what each query scans
    (p50 48 ms instead of 20 ms); a build is rare (after 5% of the library changed), searches are not."""
    return int(min(65536, max(64, 4 * np.sqrt(count))))


class _MatrixFile:
    """The rows of a float32 matrix saved by `VectorCache._write` (a version 1.0 .npy), read a block
    at a time with plain file reads: the pages read belong to the system's file cache, not to this
    process, as they would through a memory map."""

    def __init__(self, path: Path):
        self._file = open(path, "rb")  # noqa: SIM115 (a context manager: closed by __exit__)
        np.lib.format.read_magic(self._file)
        (self.count, self.dim), _, dtype = np.lib.format.read_array_header_1_0(self._file)
        if dtype != np.dtype("<f4"):
            self._file.close()
            raise ValueError(f"{path}: not a float32 matrix")
        self._offset = self._file.tell()

    def rows(self, start: int, stop: int) -> np.ndarray:
        self._file.seek(self._offset + start * self.dim * 4)
        block = np.fromfile(self._file, dtype="<f4", count=(stop - start) * self.dim)
        return block.reshape(stop - start, self.dim)

    def blocks(self, size: int = ANN_BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.count, size):
            yield start, self.rows(start, min(self.count, start + size))

    def pick(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (sorted), in one pass over the file."""
        out = np.empty((len(rows), self.dim), np.float32)
        for start, block in self.blocks():
            lo, hi = np.searchsorted(rows, [start, start + len(block)])
            out[lo:hi] = block[rows[lo:hi] - start]
        return out

    def __enter__(self) -> _MatrixFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _train_size(count: int, nlist: int) -> int:
    """Vectors the coarse quantizer's k-means trains on: 30 per list (faiss asks 39 or more), at most
    `ANN_TRAIN_MAX`, so the build's memory does not grow with the library beyond the codes themselves."""
    return min(count, nlist * 30, ANN_TRAIN_MAX)


def _build_ann(folder: Path, matrix: Path) -> str | None:
    """An IVF index (faiss) over the unit vectors of the `matrix` file; None when faiss is not
    installed (exact search). Memory: the training sample (at most `ANN_TRAIN_MAX` vectors), one
    block of `ANN_BLOCK_ROWS` rows and the 8-bit codes (one byte per dimension and photo)."""
    try:
        import faiss
    except ImportError:
        log.warning(
            "this library has more than %d photos; install faiss (pip install 'pixelsift[ann]') for "
            "fast approximate search. Searching exactly meanwhile.",
            ANN_MIN_VECTORS,
        )
        return None
    with _MatrixFile(matrix) as vectors:
        count, dim = vectors.count, vectors.dim
        nlist = _ivf_lists(count)
        quantizer = faiss.IndexFlatIP(dim)
        # 8-bit codes: a quarter of float32's memory and scan time; the best candidates are
        # re-scored exactly from the float32 vectors, so the scores shown are exact cosines.
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        # k-means: 10 iterations (faiss: 25), the build's bulk; recall@20 measured 0.989-0.997 from
        # 8 to 30 training vectors per list (benchmarks/bench_library.py search, README)
        index.cp.niter = 10
        index.cp.min_points_per_centroid = 1  # a capped sample has fewer than faiss's 39 per list
        rng = np.random.default_rng(0)
        index.train(vectors.pick(np.sort(rng.choice(count, size=_train_size(count, nlist), replace=False))))
        for _, block in vectors.blocks():
            index.add(block)
        faiss.write_index(index, str(folder / "ann.faiss"))
    return "faiss-ivf"


def _load_ann(folder: Path, state: CacheState) -> object | None:
    try:
        import faiss
    except ImportError:
        return None
    index: Any = faiss.read_index(str(folder / "ann.faiss"), faiss.IO_FLAG_MMAP)
    index.nprobe = ANN_PROBES
    return index


ANN_PROBES = 16  # inverted lists visited per query (of 4 sqrt(N)); see the README for recall
RERANK_FACTOR = 4  # candidates taken from the approximate index per result, re-scored exactly


def _ann_search(index: object, q: np.ndarray, k: int) -> np.ndarray:
    """Rows of the cache matrix nearest to q according to the approximate index."""
    _, rows = index.search(q[None].astype(np.float32), k)  # type: ignore[attr-defined]
    return rows[0][rows[0] >= 0]
