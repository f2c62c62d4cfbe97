"""Working through sequences in pieces: `chunks` of a sequence, `batched` of any iterable."""

from __future__ import annotations

from collections.abc import Iterator

from pixelsift.core.sequences import batched, chunks


def test_chunks_slice_a_sequence() -> None:
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]


def test_batched_reads_an_iterable_only_as_far_as_the_batch_it_gives() -> None:
    read: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(7):
            read.append(n)
            yield n

    batches = batched(numbers(), 3)
    assert next(batches) == [0, 1, 2] and read == [0, 1, 2]
    assert list(batches) == [[3, 4, 5], [6]]
    assert list(batched(iter(()), 3)) == []
