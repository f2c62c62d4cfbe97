"""Change detection of the indexer as a pure function: moves, copies, touches, deletions, no database."""

from __future__ import annotations

from pixelsift.library.changes import paths_to_hash, plan_changes
from pixelsift.library.rows import StoredPhoto


def stored(*rows: tuple[str, int, int, int, str | None, str]) -> dict[str, StoredPhoto]:
    return {path: StoredPhoto(i, size, mtime, sha, status) for path, i, size, mtime, sha, status in rows}


def test_unchanged_photos_need_nothing_and_failed_ones_are_not_retried() -> None:
    index = stored(("a.jpg", 1, 100, 1, "h1", "ok"), ("bad.jpg", 2, 7, 1, None, "failed"))
    on_disk = {"a.jpg": (100, 1), "bad.jpg": (7, 1)}
    assert paths_to_hash(index, on_disk) == []
    plan = plan_changes(index, on_disk, {})
    assert (plan.compute, plan.unchanged, plan.still_failed, plan.writes) == ([], 1, 1, False)


def test_a_renamed_photo_keeps_its_entry_and_a_vanished_one_is_deleted() -> None:
    index = stored(("old.jpg", 1, 100, 1, "h1", "ok"), ("gone.jpg", 2, 200, 1, "h2", "ok"))
    on_disk = {"new.jpg": (100, 5)}
    assert paths_to_hash(index, on_disk) == ["new.jpg"]
    plan = plan_changes(index, on_disk, {"new.jpg": "h1"})
    assert plan.moves == [("old.jpg", "new.jpg")]
    assert plan.deleted == [2]
    assert plan.compute == [] and plan.added == 0 and plan.writes


def test_a_copy_of_an_indexed_photo_copies_its_entry() -> None:
    index = stored(("a.jpg", 1, 100, 1, "h1", "ok"))
    on_disk = {"a.jpg": (100, 1), "copy/a.jpg": (100, 9)}
    plan = plan_changes(index, on_disk, {"copy/a.jpg": "h1"})
    assert plan.copies == [("a.jpg", "copy/a.jpg")] and plan.moves == [] and plan.deleted == []
    assert plan.unchanged == 1


def test_a_copy_of_a_failed_photo_is_computed_not_copied() -> None:
    index = stored(("bad.jpg", 1, 100, 1, "h1", "failed"))
    plan = plan_changes(index, {"bad.jpg": (100, 1), "bad2.jpg": (100, 2)}, {"bad2.jpg": "h1"})
    assert plan.copies == [] and plan.compute == ["bad2.jpg"] and plan.added == 1


def test_a_new_file_of_a_size_nobody_has_is_computed_without_hashing() -> None:
    index = stored(("a.jpg", 1, 100, 1, "h1", "ok"))
    on_disk = {"a.jpg": (100, 1), "b.jpg": (555, 1)}
    assert paths_to_hash(index, on_disk) == []
    plan = plan_changes(index, on_disk, {})
    assert plan.compute == ["b.jpg"] and plan.added == 1 and plan.updated == 0


def test_a_new_mtime_with_the_same_content_is_a_touch_and_new_content_is_recomputed() -> None:
    index = stored(("t.jpg", 1, 100, 1, "h1", "ok"), ("e.jpg", 2, 100, 1, "h2", "ok"))
    on_disk = {"t.jpg": (100, 2), "e.jpg": (120, 2)}
    assert sorted(paths_to_hash(index, on_disk)) == ["e.jpg", "t.jpg"]
    plan = plan_changes(index, on_disk, {"t.jpg": "h1", "e.jpg": "h9"})
    assert plan.touched == ["t.jpg"]
    assert plan.compute == ["e.jpg"] and plan.added == 0 and plan.updated == 1


def test_two_vanished_copies_and_two_new_paths_move_once_each() -> None:
    index = stored(("x/1.jpg", 1, 100, 1, "h1", "ok"), ("x/2.jpg", 2, 100, 1, "h1", "ok"))
    on_disk = {"y/1.jpg": (100, 3), "y/2.jpg": (100, 3)}
    plan = plan_changes(index, on_disk, {"y/1.jpg": "h1", "y/2.jpg": "h1"})
    # one vanished entry per content hash can be the source of a move; the other new path is computed
    # (it is a copy of nothing indexed that is still there) and the other old entry is deleted
    assert len(plan.moves) == 1 and len(plan.deleted) == 1 and len(plan.compute) == 1
    moved_from = plan.moves[0][0]
    assert {moved_from, next(p for p, r in index.items() if r.id in plan.deleted)} == {"x/1.jpg", "x/2.jpg"}


def test_an_unreadable_changed_file_is_recomputed() -> None:
    index = stored(("a.jpg", 1, 100, 1, "h1", "ok"))
    plan = plan_changes(index, {"a.jpg": (90, 2)}, {})  # the hash could not be read
    assert plan.compute == ["a.jpg"] and plan.touched == [] and plan.updated == 1
