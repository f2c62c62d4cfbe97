"""What changed in a library's folder since it was indexed: a scan of the folder, then a pure plan.

`plan_changes` decides, from the index's rows, the folder's (size, mtime) and the content hashes of
the few files that need one, which photos were moved or renamed (same content as a vanished entry:
they keep their id and results), copied (same content as an indexed photo: the copy gets its results),
touched (new mtime, same content), deleted, and which need computing. It reads no file and no
database, so it is tested on its own (tests/unit/test_library_changes.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pixelsift.errors import ImageError
from pixelsift.imaging.images import walk_image_paths
from pixelsift.library.rows import OK, StoredPhoto

Stat = tuple[int, int]  # (size in bytes, mtime in ns)


def scan_folder(
    root: Path,
    exclude: Sequence[str] = (),
    on_skip: Callable[[ImageError], None] | None = None,
    follow_links: bool = False,
) -> dict[str, Stat]:
    """relative path -> (size, mtime_ns) of every photo under `root` (hidden files and folders skipped;
    entries that cannot be photos, such as a link loop or a FIFO, go to `on_skip`, and so does a link
    out of `root` unless `follow_links`)."""
    found: dict[str, Stat] = {}
    prefix = len(str(root).rstrip(os.sep)) + 1  # plain strings: pathlib costs more than stat here
    for name in walk_image_paths(root, exclude=exclude, on_skip=on_skip, follow_links=follow_links):
        try:
            stat = os.stat(name)
        except OSError:  # vanished between listing and stat, or a broken symlink
            continue
        found[name[prefix:].replace(os.sep, "/")] = (stat.st_size, stat.st_mtime_ns)
    return found


def paths_to_hash(stored: Mapping[str, StoredPhoto], on_disk: Mapping[str, Stat]) -> list[str]:
    """The files whose content hash `plan_changes` needs: changed files, and new files whose size
    matches a vanished or an indexed one (only those can be a move or a copy)."""
    gone_or_kept = [
        r.size for p, r in stored.items() if p not in on_disk or on_disk[p] == (r.size, r.mtime_ns)
    ]
    sizes = set(gone_or_kept)
    new = [p for p, (size, _) in on_disk.items() if p not in stored and size in sizes]
    changed = [
        p for p, stat in on_disk.items() if p in stored and (stored[p].size, stored[p].mtime_ns) != stat
    ]
    return new + changed


@dataclass
class ChangePlan:
    """What one index run does before computing anything (all of it in one transaction)."""

    moves: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (indexed path, new path)
    touched: list[str] = field(default_factory=list)  # new mtime, same content
    deleted: list[int] = field(default_factory=list)  # ids of entries whose file is gone
    compute: list[str] = field(default_factory=list)  # new and changed paths, sorted
    added: int = 0  # of `compute`: paths the index has never seen
    unchanged: int = 0  # readable photos with the same size and mtime
    still_failed: int = 0  # unreadable photos with the same size and mtime (not retried)

    @property
    def updated(self) -> int:
        """Of `compute`: indexed paths whose content changed."""
        return len(self.compute) - self.added

    @property
    def writes(self) -> bool:
        return bool(self.moves or self.copies or self.touched or self.deleted)


def plan_changes(
    stored: Mapping[str, StoredPhoto], on_disk: Mapping[str, Stat], hashes: Mapping[str, str]
) -> ChangePlan:
    """Compare the index (`stored`) with the folder (`on_disk`); `hashes` holds the content sha256 of
    (at least) the files `paths_to_hash` named that could be read."""
    new = [p for p in on_disk if p not in stored]
    changed = [p for p in on_disk if p in stored and (stored[p].size, stored[p].mtime_ns) != on_disk[p]]
    gone = {p: r for p, r in stored.items() if p not in on_disk}
    unchanged = [p for p in on_disk if p in stored and (stored[p].size, stored[p].mtime_ns) == on_disk[p]]
    plan = ChangePlan(
        unchanged=sum(stored[p].status == OK for p in unchanged),
        still_failed=sum(stored[p].status != OK for p in unchanged),
    )
    gone_by_hash = {r.sha256: p for p, r in gone.items() if r.sha256}
    kept_by_hash = {stored[p].sha256: p for p in unchanged if stored[p].sha256 and stored[p].status == OK}
    compute: list[str] = []
    for path in new:
        digest = hashes.get(path)
        if digest and digest in gone_by_hash:
            plan.moves.append((gone_by_hash.pop(digest), path))
        elif digest and digest in kept_by_hash:
            plan.copies.append((kept_by_hash[digest], path))
        else:
            compute.append(path)
    for path in changed:
        if hashes.get(path) and hashes[path] == stored[path].sha256:
            plan.touched.append(path)
        else:
            compute.append(path)
    moved_from = {old for old, _ in plan.moves}
    plan.deleted = [r.id for p, r in gone.items() if p not in moved_from]
    plan.compute = sorted(compute)
    plan.added = sum(p not in stored for p in compute)
    return plan
