"""Walking a folder never raises: link loops, broken links and FIFOs are each reported once and
skipped, folder links are followed once, and every command goes on with the readable photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelsift.cli import main
from pixelsift.errors import ImageError
from pixelsift.imaging.images import iter_folder

from .conftest import HOSTILE, small_library


def test_the_walk_yields_each_photo_once_and_each_bad_entry_once(hostile_folder: Path) -> None:
    items = list(iter_folder(hostile_folder))
    photos = sorted(p.relative_to(hostile_folder).as_posix() for p in items if isinstance(p, Path))
    assert photos == ["good.jpg", "notes.jpg", "sub/good2.png"]  # notes.jpg fails later, at decoding
    errors = {Path(e.path).name: e.reason for e in items if isinstance(e, ImageError)}
    assert set(errors) == {"loop_a.jpg", "loop_b.jpg", "broken.jpg", "pipe.png", "sock.jpg"}
    for name, reason in errors.items():
        assert HOSTILE[name] in reason


def test_a_folder_linked_twice_is_walked_once(tmp_path: Path) -> None:
    from helpers import write_image

    write_image(tmp_path / "real" / "a.jpg")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    found = [p for p in iter_folder(tmp_path) if isinstance(p, Path)]
    assert len(found) == 1


def check_reported_once(err: str, folder: Path) -> None:
    assert "Traceback" not in err
    for name, words in HOSTILE.items():
        lines = [line for line in err.splitlines() if str(folder / name) in line]
        assert len(lines) == 1, (name, err)
        assert words in lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["classify"],
        ["embed", "-o", "{tmp}/vectors.npz"],
        ["index", "--db", "{tmp}/index.db", "--detector", "none"],
    ],
    ids=["classify", "embed", "index"],
)
def test_commands_report_each_bad_entry_once_and_process_the_rest(
    command: list[str], hostile_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    code = main([args[0], str(hostile_folder), *args[1:]])
    out, err = capsys.readouterr()
    assert code == 1  # some inputs failed; the command itself completed
    check_reported_once(err, hostile_folder)
    if args[0] == "classify":
        assert "good.jpg" in out and "good2.png" in out
    if args[0] == "embed":
        import numpy as np

        assert len(np.load(tmp_path / "vectors.npz")["paths"]) == 2
    if args[0] == "index":
        assert "3 new" in out and "6 failed" in out  # notes.jpg is a new entry that failed


def test_training_on_a_data_set_with_bad_entries_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import write_image

    root = tmp_path / "set"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        for i in range(6):
            write_image(root / label / f"{i}.jpg", color=colour, seed=i)
    (root / "red" / "loop.jpg").symlink_to("loop.jpg")
    (root / "blue" / "broken.jpg").symlink_to("gone.jpg")
    code = main(["train", str(root), "-o", str(tmp_path / "m.safetensors")])
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert code == 1 and (tmp_path / "m.safetensors").is_file()  # some inputs failed, training completed
    assert sum("loop.jpg" in line for line in err.splitlines()) == 1
    assert sum("broken.jpg" in line for line in err.splitlines()) == 1


@pytest.fixture
def library_with_links_out(tmp_path: Path) -> tuple[Path, Path]:
    """A library with a link to `/`, a folder link and a file link out of it, and a link inside it."""
    from helpers import write_image

    outside = tmp_path / "elsewhere"
    write_image(outside / "private.jpg", seed=3)
    write_image(outside / "trip" / "beach.jpg", seed=4)
    root = tmp_path / "library"
    write_image(root / "mine.jpg", seed=5)
    (root / "root").symlink_to("/", target_is_directory=True)
    (root / "trip").symlink_to(outside / "trip", target_is_directory=True)
    (root / "private.jpg").symlink_to(outside / "private.jpg")
    (root / "again.jpg").symlink_to(root / "mine.jpg")  # inside: followed
    return root, outside


def test_the_library_never_leaves_its_folder(
    library_with_links_out: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, outside = library_with_links_out
    db = tmp_path / "index.db"
    code = main(["index", str(root), "--db", str(db), "--detector", "none", "-q", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    import json

    report = json.loads(out)
    assert report["added"] == 2  # mine.jpg and the link inside the library to it
    assert len(report["failed"]) == 3  # the three links out, reported as entries that were skipped
    for name, target in (("root", "/"), ("trip", outside / "trip"), ("private.jpg", outside / "private.jpg")):
        lines = [line for line in err.splitlines() if f"{root / name}:" in line]
        assert len(lines) == 1, (name, err)  # one line each, not one per file behind it
        assert f"a symbolic link out of the folder (to {target}); not followed (--follow-links)" in lines[0]


def test_follow_links_indexes_what_the_links_lead_to(
    library_with_links_out: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixelsift.library.changes import scan_folder

    root, _ = library_with_links_out
    (root / "root").unlink()  # not the whole machine
    found = scan_folder(root, follow_links=True)
    assert sorted(found) == ["again.jpg", "mine.jpg", "private.jpg", "trip/beach.jpg"]
    assert sorted(scan_folder(root)) == ["again.jpg", "mine.jpg"]


def test_results_of_a_moved_library_are_flagged_and_the_note_says_how_to_follow(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    old = tmp_path / "old"
    db = str(small_library(samples, old, tmp_path / "index.db"))
    new = tmp_path / "new"
    old.rename(new)
    capsys.readouterr()
    assert main(["search", "cat", "--db", db, "--format", "json", "-n", "1"]) == 0
    out, err = capsys.readouterr()
    (best,) = json.loads(out)
    assert best["missing"] is True and best["path"] == str(old / "cat.png")
    assert f"the library's folder {old} is not there any more" in err
    assert f"pixelsift index NEW_FOLDER --db {db}" in err
    assert main(["index", str(new), "--db", db, "--detector", "none", "-q"]) == 0
    capsys.readouterr()
    assert main(["search", "cat", "--db", db, "--format", "json", "-n", "1"]) == 0
    out, err = capsys.readouterr()
    (best,) = json.loads(out)
    assert best["missing"] is False and best["path"] == str(new / "cat.png") and "not there" not in err


def test_a_deleted_photo_is_flagged_missing_in_the_table(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    db = str(small_library(samples, folder, tmp_path / "index.db"))
    (folder / "cat.png").unlink()
    capsys.readouterr()
    assert main(["search", "cat", "--db", db, "-n", "1"]) == 0
    out, err = capsys.readouterr()
    assert "cat.png (missing)" in out
    assert "1 of these photos are not on disk any more" in err
