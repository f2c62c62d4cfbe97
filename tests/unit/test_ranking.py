"""Several concepts rank rather than filter (`fusion.combine`, `search.main_concept`): photos that show
every concept come first; photos that show the main concept follow, ranked by how much of the rest
they show; a weak context word never empties the result; `--all` keeps the strict AND."""

from __future__ import annotations

import numpy as np

from pixelsift.library.fusion import combine
from pixelsift.library.rows import Term
from pixelsift.library.search import main_concept

MIN, FLOOR = 0.25, 0.5


def rank(rows: list[list[float]], main: int = 0, match_all: bool = False) -> tuple[list[int], list[float]]:
    """The listed photos (column numbers) in ranked order, and their scores."""
    r = combine([np.array(rows, float)], [main], MIN, FLOOR, match_all)
    listed = [i for i in np.lexsort((-r.score, -r.tier)).tolist() if r.tier[i] > 0]
    return listed, [float(r.score[i]) for i in listed]


def test_photos_that_show_every_concept_come_first_even_below_a_stronger_main_concept() -> None:
    #          photo:  0     1     2     3
    dog = [0.99, 0.60, 0.90, 0.10]
    beach = [0.00, 0.40, 0.10, 0.95]
    order, scores = rank([dog, beach])
    assert order[0] == 1, "the only photo with a dog and a beach"
    assert order[1:] == [2, 0], "then dogs, the one with more beach first"
    assert 3 not in order, "a beach without a dog is not a dog photo"
    assert scores[1] > scores[2], "a little beach raises a photo above a stronger dog with none"


def test_a_weak_context_word_ranks_but_never_empties_the_result() -> None:
    dog = [0.9, 0.3, 0.1]
    nothing = [0.0, 0.0, 0.0]  # a word that names no class seen here
    order, scores = rank([dog, nothing])
    alone, alone_scores = rank([dog])
    assert order == alone == [0, 1], "every photo the main concept lists alone is still listed"
    assert all(s < a for s, a in zip(scores, alone_scores, strict=True)), "at a lower score"
    assert scores == [0.9 * FLOOR, 0.3 * FLOOR]


def test_all_keeps_the_strict_and_scored_by_the_weakest_concept() -> None:
    dog = [0.99, 0.60, 0.90]
    beach = [0.00, 0.40, 0.20]
    order, scores = rank([dog, beach], match_all=True)
    assert order == [1] and scores == [0.40]


def test_or_takes_each_photos_best_alternative_and_its_tier() -> None:
    cat_and_sofa = np.array([[0.9, 0.0, 0.8], [0.0, 0.0, 0.6]])
    dog = np.array([[0.0, 0.7, 0.3]])
    r = combine([cat_and_sofa, dog], [0, 0], MIN, FLOOR, False)
    assert r.tier.tolist() == [1, 2, 2] and r.group.tolist() == [0, 1, 0]
    assert r.gate.tolist() == [0.9, 0.7, 0.8], "what had to reach the minimum: each best main concept"


def test_the_main_concept_is_the_first_that_names_a_class() -> None:
    beach = Term("beach", {"n09428293": 0.6}, {}, {}, "related", ("shore",))
    dog = Term("dog", {"n02084071": 1.0}, {"dog": 1.0}, {})
    cat = Term("cat", {"n02121808": 1.0}, {"cat": 1.0}, {})
    assert main_concept([beach, dog]) == 1, '"the beach with a dog" is about the dog'
    assert main_concept([cat, dog]) == 0, "two things: the first named"
    assert main_concept([beach]) == 0
