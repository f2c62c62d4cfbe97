"""Files pixelsift owns recover by themselves: a damaged feature cache is moved aside and rebuilt, an
unwritable home means running without the cache, and a read-only index can be searched (indexing
into it says why not)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from helpers import write_image
from pixelsift.cli import main
from pixelsift.library import PhotoIndex

from .conftest import unwritable


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i, colour in enumerate([(220, 20, 20), (20, 220, 20), (20, 20, 220)]):
        write_image(root / f"{i}.jpg", size=(96, 72), color=colour, seed=i)
    return root


def embed(photos: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["embed", str(photos), "-o", str(out)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_feature_cache_is_moved_aside_and_rebuilt(
    damage: str, photos: Path, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = embed(photos, tmp_path / "a.npz", capsys)
    assert code == 0 and err == ""
    cache = home / "features" / "features.sqlite3"
    with sqlite3.connect(cache) as conn:  # everything into the main file, then damage that
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{cache}{suffix}").unlink(missing_ok=True)
    data = cache.read_bytes()
    cache.write_bytes(os.urandom(len(data)) if damage == "garbage" else data[: len(data) // 3])

    code, err = embed(photos, tmp_path / "b.npz", capsys)
    assert code == 0 and "Traceback" not in err
    assert "was damaged" in err and "started a fresh one" in err
    aside = list(cache.parent.glob("features.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].name in err

    code, err = embed(photos, tmp_path / "c.npz", capsys)  # the fresh cache works: no warning again
    assert code == 0 and err == ""
    from pixelsift.features.cache import FeatureCache

    assert FeatureCache(cache.parent).count() == 3


@pytest.mark.parametrize("command", ["embed", "train", "predict", "index"])
def test_a_home_under_a_file_degrades_or_says_why(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "set"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        for i in range(4):
            write_image(root / label / f"{i}.jpg", color=colour, seed=i)
    model = tmp_path / "m.safetensors"
    if command == "predict":
        assert main(["train", str(root), "-o", str(model)]) == 0
        capsys.readouterr()
    blocker = tmp_path / "a-file"
    blocker.write_text("PIXELSIFT_HOME points under this file")
    monkeypatch.setenv("PIXELSIFT_HOME", str(blocker / "home"))
    args = {
        "embed": ["embed", str(root), "-o", str(tmp_path / "v.npz")],
        "train": ["train", str(root), "-o", str(tmp_path / "t.safetensors")],
        "predict": ["predict", str(model), str(root / "red")],
        "index": ["index", str(root)],
    }[command]
    code = main(args)
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    if command == "index":  # the index itself lives in the home when no --db is given: say so
        assert code == 1
        assert "cannot create the index" in err and "--db" in err and "PIXELSIFT_HOME" in err
    else:  # the feature cache is a convenience: the command works without it
        assert code == 0, err
        assert "cannot use the feature cache" in err and "going on without it" in err


def test_a_read_only_index_is_searchable_and_indexing_into_it_says_why(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "lib" / "index.db"
    assert main(["index", str(photos), "--db", str(db), "--detector", "none"]) == 0
    capsys.readouterr()
    before = db.read_bytes()
    with unwritable(db, db.parent):
        assert main(["search", "red", "--db", str(db), "--format", "json"]) in (0, 1)
        code = main(["similar", str(photos / "0.jpg"), "--db", str(db), "-n", "2"])
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err and ("1.jpg" in out or "2.jpg" in out)
        with PhotoIndex(db, create=False) as index:
            assert index.store.readonly and index.stats()["photos"] == 3
        code = main(["index", str(photos), "--db", str(db)])
        _, err = capsys.readouterr()
        assert code == 1 and "Traceback" not in err
        assert "cannot index into" in err and "read-only" in err
    assert db.read_bytes() == before  # nothing was written


def test_a_read_only_home_means_running_without_the_cache(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "ro-home"
    home.mkdir()
    monkeypatch.setenv("PIXELSIFT_HOME", str(home))
    with unwritable(home):
        code = main(["embed", str(photos), "-o", str(tmp_path / "v.npz")])
        _, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    assert "cannot use the feature cache" in err
    assert len(np.load(tmp_path / "v.npz")["paths"]) == 3
    assert not any(home.iterdir())  # nothing was written there
