"""Near duplicates group by linking every pair that reaches the threshold; a group says its weakest
link; a group that is only one set of exact copies is left to the exact list."""

from __future__ import annotations

import numpy as np

from pixelsift.core.arrays import l2_normalize
from pixelsift.library.duplicates import near_groups


def test_pairs_at_the_threshold_link_into_groups_with_their_weakest_link() -> None:
    rng = np.random.default_rng(0)
    base = l2_normalize(rng.normal(size=(3, 64)).astype(np.float32))
    a, b, c = base
    vectors = l2_normalize(
        np.stack(
            [a, a + 0.05 * b, a + 0.1 * b + 0.1 * c, b, c + 0.02 * a, rng.normal(size=64).astype(np.float32)]
        )
    )
    ids = np.array([10, 11, 12, 20, 30, 40])
    groups = near_groups(ids, vectors, 0.9)
    (group,) = groups  # 20, 30 and 40 look like nothing else
    sims = vectors @ vectors.T
    assert group.kind == "near" and group.ids == [10, 11, 12]
    links = [sims[i, j] for i in range(3) for j in range(i + 1, 3) if sims[i, j] >= 0.9]
    assert abs(group.similarity - min(links)) < 1e-6, "the weakest link that joins the group"
    assert near_groups(ids, vectors, 0.9, same=[[10, 11, 12]]) == [], "exact copies are listed as exact"


def test_blocks_give_the_same_groups_as_one_pass(monkeypatch: object) -> None:
    import pixelsift.library.duplicates as duplicates

    rng = np.random.default_rng(1)
    centres = l2_normalize(rng.normal(size=(40, 32)).astype(np.float32))
    vectors = l2_normalize(
        np.repeat(centres, 3, axis=0) + 0.02 * rng.normal(size=(120, 32)).astype(np.float32)
    )
    ids = np.arange(120)
    whole = near_groups(ids, vectors, 0.95)
    monkeypatch.setattr(duplicates, "BLOCK", 7)  # type: ignore[attr-defined]
    blocked = near_groups(ids, vectors, 0.95)
    assert sorted(g.ids for g in whole) == sorted(g.ids for g in blocked)
    assert sorted(g.ids for g in whole) == [[3 * k, 3 * k + 1, 3 * k + 2] for k in range(40)]
