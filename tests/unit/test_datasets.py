"""Data-set folders: layouts, counts, hold-out, and every problem `pixelsift dataset` reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import write_image
from pixelsift.cli import main
from pixelsift.errors import UsageError
from pixelsift.imaging.datasets import holdout_split, looks_like_dataset, read_dataset


def make_layout(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """counts: {split or "": {class: images}}; images differ in colour and noise (distinct bytes)."""
    seed = 0
    for split, classes in counts.items():
        for name, n in classes.items():
            for i in range(n):
                seed += 1
                write_image(
                    root / split / name / f"{name}_{i}.png", color=(seed * 7 % 255, 90, 40), seed=seed
                )
    return root


def test_split_layout_counts_and_first_sample(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "ds", {"train": {"cat": 3, "dog": 2}, "valid": {"cat": 1, "dog": 1}})
    ds = read_dataset(root)
    assert ds.splits == ["train", "valid"]
    assert ds.classes == ["cat", "dog"]
    stats = ds.stats()
    assert list(stats.columns) == ["train", "valid", "total", "first sample"]
    assert stats.loc["cat"].tolist() == [3, 1, 4, "train/cat/cat_0.png"]
    assert stats.loc["dog", "total"] == 3
    assert [s.label for s in ds.samples_of("valid")] == ["cat", "dog"]
    assert ds.check() == []


def test_folder_of_class_folders_has_no_splits(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "ds", {"": {"a": 2, "b": 3}})
    ds = read_dataset(root)
    assert ds.splits == [] and not ds.has_splits
    assert list(ds.stats().columns) == ["all", "total", "first sample"]
    assert ds.stats()["all"].tolist() == [2, 3]
    assert {s.split for s in ds.samples} == {None}
    assert looks_like_dataset(root)


def test_val_folder_is_the_valid_split_and_two_names_for_one_split_are_refused(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "ds", {"train": {"a": 1}, "val": {"a": 1}})
    assert read_dataset(root).splits == ["train", "valid"]
    (root / "validation" / "a").mkdir(parents=True)
    with pytest.raises(UsageError, match="both val/ and validation/"):
        read_dataset(root)


def test_folders_that_are_not_data_sets(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such folder"):
        read_dataset(tmp_path / "nope")
    flat = tmp_path / "flat"
    write_image(flat / "a.png")
    with pytest.raises(UsageError, match="no class folders"):
        read_dataset(flat)
    assert not looks_like_dataset(flat)


def test_structure_problems_are_reported(tmp_path: Path) -> None:
    root = make_layout(
        tmp_path / "ds", {"train": {"cat": 2, "dog": 2, "owl": 1}, "valid": {"cat": 1, "dog": 1}}
    )
    (root / "valid" / "eel").mkdir()  # empty, and only in valid/
    write_image(root / "train" / "loose.png")  # outside any class folder
    problems = read_dataset(root).check(read_files=False)
    kinds = [p.kind for p in problems]
    assert kinds.count("empty_class") == 1 and "valid/eel has no images" in problems[0].message
    one_split = {p.message.split("'")[1] for p in problems if p.kind == "class_in_one_split"}
    assert one_split == {"owl", "eel"}
    stray = next(p for p in problems if p.kind == "stray_file")
    assert stray.paths == [str(root / "train" / "loose.png")]


def test_unreadable_files_and_photos_in_two_splits_are_found(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "ds", {"train": {"cat": 2, "dog": 2}, "valid": {"cat": 1, "dog": 1}})
    broken = root / "train" / "dog" / "broken.jpg"
    data = write_image(tmp_path / "full.jpg", size=(200, 150)).read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    # The same photo under another name in valid/: a leak from training into validation.
    shutil.copy(root / "train" / "cat" / "cat_0.png", root / "valid" / "cat" / "copy.png")
    problems = read_dataset(root).check()
    unreadable = [p for p in problems if p.kind == "unreadable"]
    assert [p.paths for p in unreadable] == [[str(broken)]]
    assert "truncated" in unreadable[0].message
    (dup,) = [p for p in problems if p.kind == "duplicate"]
    assert sorted(dup.paths) == sorted([str(root / "train/cat/cat_0.png"), str(root / "valid/cat/copy.png")])
    assert list(read_dataset(root).check().to_pandas().columns) == ["kind", "message", "paths"]


def test_holdout_is_stratified_seeded_and_keeps_singletons_in_training(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "ds", {"": {"a": 10, "b": 5, "c": 1}})
    samples = read_dataset(root).samples
    train, valid = holdout_split(samples, 0.2, seed=3)
    held = {label: sum(s.label == label for s in valid) for label in "abc"}
    assert held == {"a": 2, "b": 1, "c": 0}
    assert len(train) + len(valid) == len(samples) and not {s.path for s in train} & {s.path for s in valid}
    assert holdout_split(samples, 0.2, seed=3) == (train, valid), "same seed, same split"
    assert holdout_split(samples, 0.2, seed=4)[1] != valid


def test_cli_table_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_layout(tmp_path / "ds", {"train": {"cat": 2, "dog": 1}, "valid": {"cat": 1, "dog": 1}})
    assert main(["dataset", str(root)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == f"{root}: 2 classes, 5 images (train 3, valid 2)"
    assert out[1].split() == ["class", "train", "valid", "total", "first", "sample"]
    assert out[2].split() == ["cat", "2", "1", "3", "train/cat/cat_0.png"]
    assert out[4].split() == ["total", "3", "2", "5"]
    assert out[-1] == "No problems found."
    (warning,) = [line for line in captured.err.splitlines() if "warning" in line]
    assert "2 class(es) with fewer than 10 photos (cat, dog; the smallest has 2)" in warning, warning

    (root / "train" / "eel").mkdir()
    main(["dataset", str(root)])
    eel = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("eel"))
    assert eel.split() == ["eel", "0", "0", "0", "-"], "an empty class has no first sample"
    (root / "train" / "eel").rmdir()

    (root / "valid" / "dog" / "dog_0.png").write_bytes(b"")
    assert main(["dataset", str(root), "--format", "json"]) == 1, "problems found: exit code 1"
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"cat": {"train": 2, "valid": 1}, "dog": {"train": 1, "valid": 1}}
    assert data["first_sample"]["dog"] == "train/dog/dog_0.png"
    (problem,) = data["problems"]
    assert problem["kind"] == "unreadable" and "empty file" in problem["message"]
