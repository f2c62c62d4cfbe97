"""`pixelsift duplicates`, `PhotoIndex.duplicates` and `/api/duplicates` on a real index: a byte copy is
an exact duplicate, edited copies (brighter, cropped) are near duplicates of their photo, different
photos are not grouped, and nothing is deleted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageEnhance

from conftest import SAMPLES
from pixelsift import PhotoIndex
from pixelsift.cli import main
from pixelsift.web import WebConfig, create_app


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dups") / "photos"
    (root / "backup").mkdir(parents=True)
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"):
        shutil.copy(SAMPLES / name, root / name)
    shutil.copy(SAMPLES / "chelsea.png", root / "backup" / "chelsea.png")  # the same bytes
    ImageEnhance.Brightness(Image.open(SAMPLES / "coffee.png").convert("RGB")).enhance(1.15).save(
        root / "coffee-brighter.jpg", quality=92
    )
    coffee = Image.open(SAMPLES / "coffee.png").convert("RGB")
    w, h = coffee.size
    coffee.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(root / "coffee-cropped.jpg", quality=92)
    db = root.parent / "index.db"
    with PhotoIndex(db) as index:
        index.update(root, detector="none")
    return root, db


def test_exact_copies_and_edited_copies_are_grouped_and_different_photos_are_not(
    library: tuple[Path, Path],
) -> None:
    root, db = library
    before = sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file())
    with PhotoIndex(db, create=False) as index:
        groups = index.duplicates()
    assert [(g.kind, sorted(g.paths)) for g in groups] == [
        ("exact", ["backup/chelsea.png", "chelsea.png"]),
        ("near", ["coffee-brighter.jpg", "coffee-cropped.jpg", "coffee.png"]),
    ]
    assert groups[0].similarity == 1.0 and 0.9 <= groups[1].similarity < 1.0
    after = sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file())
    assert before == after, "nothing is deleted, moved or touched"


def test_the_cli_lists_groups_exits_1_without_any_and_refuses_a_bad_threshold(
    library: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _root, db = library
    assert main(["duplicates", "--db", str(db)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["group", "kind", "similarity", "path"]
    assert lines[1].split()[:4] == ["1", "exact", "same", "bytes"] and lines[3].split()[:2] == ["2", "near"]
    assert "2 groups (1 of exact copies, 1 of near duplicates at 0.9 or more), 5 photos" in captured.err
    assert main(["duplicates", "--db", str(db), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["kind"] == "exact" and all(Path(p).is_absolute() for p in data[0]["paths"])
    assert {Path(p).name for p in data[1]["paths"]} == {
        "coffee.png",
        "coffee-brighter.jpg",
        "coffee-cropped.jpg",
    }
    assert main(["duplicates", "--db", str(db), "--threshold", "1"]) == 0  # the exact copies remain
    assert "0 of near duplicates" in capsys.readouterr().err
    assert main(["duplicates", "--db", str(db), "--threshold", "1.5"]) == 2
    assert "--threshold must be above 0 and at most 1" in capsys.readouterr().err


def test_the_api_gives_the_groups_with_relative_paths(library: tuple[Path, Path]) -> None:
    _, db = library
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(db=db)))
    groups = client.get("/api/duplicates").json()
    assert next((g["kind"], sorted(g["paths"])) for g in groups) == (
        "exact",
        ["backup/chelsea.png", "chelsea.png"],
    )
    assert len(groups) == 2 and not any(Path(p).is_absolute() for g in groups for p in g["paths"])
    assert client.get("/api/duplicates", params={"threshold": 0}).status_code == 400


def test_the_scan_is_redone_only_after_the_library_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pixelsift.library.photo_index as photo_index

    root = tmp_path / "photos"
    root.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        shutil.copy(SAMPLES / name, root / name)
    scans: list[int] = []
    real = photo_index.near_groups

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        scans.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(photo_index, "near_groups", counted)
    with PhotoIndex(tmp_path / "i.db") as index:
        index.update(root, detector="none")
        assert index.duplicates() == [] and index.duplicates() == []
        assert scans == [2], "the second call reuses the scan"
        coffee = Image.open(SAMPLES / "coffee.png").convert("RGB")
        ImageEnhance.Brightness(coffee).enhance(1.15).save(root / "coffee-brighter.jpg", quality=92)
        index.update(root, detector="none")  # a new photo: a new write sequence
        groups = index.duplicates()
        assert scans == [2, 3] and [sorted(g.paths) for g in groups] == [
            ["coffee-brighter.jpg", "coffee.png"]
        ]
        (root / "coffee-brighter.jpg").unlink()
        index.update(root, detector="none")  # a deletion: scanned again (it may have linked a group)
        assert index.duplicates() == [] and scans == [2, 3, 2]
        index.duplicates(threshold=0.5)
        assert len(scans) == 4, "another threshold is another scan"
