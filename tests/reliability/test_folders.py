"""Walking a folder never raises: link loops, broken links and FIFOs are each reported once and
skipped, folder links are followed once, and every command goes on with the readable photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelsift.cli import main
from pixelsift.errors import ImageError
from pixelsift.imaging.images import iter_folder

from .conftest import HOSTILE


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
