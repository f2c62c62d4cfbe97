"""Duplicates in a photo index: exact copies (the same bytes: the content hash the index keeps) and near
duplicates (a resized, recompressed or slightly cropped copy, two shots of a burst: classifier features
whose cosine reaches `NEAR_THRESHOLD`). Photos are grouped by linking every such pair (connected
components); nothing is ever deleted or moved: the groups are listed for the user to decide.

The near-duplicate scan compares every photo with every other, in blocks of `BLOCK` rows of the unit
feature matrix (exact, BLAS matrix products; about n^2 x 1280 multiply-adds: a few seconds for 10,000
photos on 2 cores, minutes for 100,000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The cosine of the classifier's unit features at or above which two photos are near duplicates,
# chosen with benchmarks/bench_duplicates.py (README: "Duplicates").
NEAR_THRESHOLD = 0.90
BLOCK = 1024
EXACT, NEAR = "exact", "near"


@dataclass
class DuplicateGroup:
    """Photos that are copies of each other: `kind` "exact" (the same bytes) or "near" (`similarity`,
    the lowest cosine of the pairs that link the group)."""

    kind: str
    ids: list[int]
    paths: list[str] = field(default_factory=list)  # relative to the library, in `ids` order
    similarity: float = 1.0

    def to_dict(self, root: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "similarity": round(self.similarity, 6), "ids": self.ids}
        data["paths"] = [f"{root.rstrip('/')}/{p}" if root else p for p in self.paths]
        return data


class _Links:
    """Union-find over positions 0..n-1, remembering the weakest link of each set."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.weakest: dict[int, float] = {}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int, similarity: float) -> None:
        ra, rb = self.find(a), self.find(b)
        low = min(similarity, self.weakest.get(ra, 1.0), self.weakest.get(rb, 1.0))
        if ra != rb:
            self.parent[rb] = ra
        self.weakest[ra] = low


def near_groups(
    ids: np.ndarray,
    vectors: np.ndarray,
    threshold: float = NEAR_THRESHOLD,
    same: Sequence[Sequence[int]] = (),
    progress: Callable[[int], None] | None = None,
) -> list[DuplicateGroup]:
    """Groups of photos whose unit `vectors` reach `threshold` pairwise (linked transitively), leaving
    out groups made only of one set of `same` ids (exact copies, reported as such). `progress(rows)` is
    called after each block."""
    n = len(ids)
    links = _Links(n)
    position = {int(i): k for k, i in enumerate(ids.tolist())}
    for start in range(0, n, BLOCK):
        block = np.asarray(vectors[start : start + BLOCK], np.float32)
        sims = block @ np.asarray(vectors, np.float32).T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if start + r < c:  # each pair once, never a photo with itself
                links.join(start + r, c, float(sims[r, c]))
        if progress is not None:
            progress(len(block))
    members: dict[int, list[int]] = {}
    for k in range(n):
        members.setdefault(links.find(k), []).append(k)
    exact_sets = [frozenset(position[i] for i in group if i in position) for group in same]
    groups = []
    for root, found in members.items():
        if len(found) < 2 or any(frozenset(found) <= s for s in exact_sets):
            continue
        groups.append(
            DuplicateGroup(NEAR, sorted(int(ids[k]) for k in found), similarity=links.weakest[root])
        )
    return groups
