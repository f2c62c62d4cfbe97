"""Files pixelsift owns recover by themselves: a damaged feature cache is moved aside and rebuilt, an
unwritable home means running without the cache, and a read-only index can be searched (indexing
into it says why not)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from helpers import write_image
from pixelsift.cli import main
from pixelsift.library import PhotoIndex

from .conftest import fill, small_library, unwritable


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


def _damage_table(db: Path, table: str) -> None:
    """Overwrite the root page of `table` with noise, leaving the file's header and the other tables."""
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(db, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(bytes([0x0D]) + os.urandom(page_size - 1))


def test_a_damaged_index_is_one_line_and_repair_rebuilds_it(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    db = small_library(samples, photos, tmp_path / "index.db")
    _damage_table(db, "photos")
    capsys.readouterr()
    for command in (["search", "cat"], ["index", str(photos)], ["index", "--stats"]):
        code = main([*command, "--db", str(db)])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err, (command, err)
        assert "the index file is damaged" in err and f"pixelsift index --repair --db {db}" in err
    # the folder is read from the damaged file's settings; the damaged file is kept, never deleted
    assert main(["index", "--repair", "--db", str(db), "-q"]) == 0
    err = capsys.readouterr().err
    (aside,) = list(tmp_path.glob("index.db.damaged-*[0-9]"))
    assert f"kept the damaged index as {aside}" in err
    assert main(["search", "cat", "--db", str(db), "--format", "json", "-n", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"] == str(photos / "cat.png")


def test_a_folder_where_the_lock_file_goes_is_one_line(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "index.db"
    (tmp_path / "index.db.lock").mkdir()
    assert main(["index", str(samples), "--db", str(db), "--detector", "none", "-q"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"cannot take the lock {db}.lock: it is a folder" in err


def test_the_web_answers_503_with_the_repair_for_a_damaged_index(samples: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from pixelsift.web import WebConfig, create_app

    db = small_library(samples, tmp_path / "photos", tmp_path / "index.db")
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(db=db)))
    assert client.get("/api/search", params={"q": "cat"}).status_code == 200
    client.app.state.library._index.close()  # type: ignore[attr-defined]
    client.app.state.library._index = None  # type: ignore[attr-defined]
    _damage_table(db, "photos")
    response = client.get("/api/search", params={"q": "cat"})
    assert response.status_code == 503
    assert "the index file is damaged" in response.json()["error"] and "--repair" in response.json()["error"]


@pytest.mark.parametrize(
    "target,words",
    [
        ("{folder}", "is a folder; give a file name"),
        ("/dev/full", "not a regular file (a device or a pipe)"),
        ("{locked}/v.parquet", "this user cannot write into that folder"),
    ],
    ids=["existing-folder", "device", "unwritable-folder"],
)
def test_embed_checks_its_output_before_the_work(
    target: str, words: str, samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    output = target.format(folder=tmp_path, locked=locked)
    with unwritable(locked):
        code = main(["embed", str(samples / "chelsea.png"), "-o", output, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and words in err
    assert not os.path.exists("/dev/full.parquet") and sorted(os.listdir(locked)) == []


def test_train_refuses_a_file_where_its_report_goes_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "set"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        for i in range(3):
            write_image(root / label / f"{i}.jpg", color=colour, seed=i)
    (tmp_path / "m.report").write_text("mine")
    assert main(["train", str(root), "-o", str(tmp_path / "m.safetensors"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "a file is where the report folder goes" in err
    assert not (tmp_path / "m.safetensors").exists()  # refused before the training, nothing written
    assert (tmp_path / "m.report").read_text() == "mine"


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_a_damaged_cached_export_is_made_again(
    engine: str, home: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime" if engine == "onnxruntime" else "openvino")
    from pixelsift.models.registry import get_model_spec
    from pixelsift.runtime.loaded import clear_model_cache
    from pixelsift.runtime.onnx_runner import onnx_cache_path

    photo = str(samples / "chelsea.png")
    assert main(["classify", photo, "-k", "1", "--engine", engine, "-q"]) == 0
    cached = onnx_cache_path(get_model_spec("efficientnet_lite0"))
    whole = cached.read_bytes()
    cached.write_bytes(whole[: len(whole) // 3])  # as a crash or a full disk mid-write would leave it
    clear_model_cache()
    capsys.readouterr()
    assert main(["classify", photo, "-k", "1", "--engine", engine, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["predictions"][0]["label"] == "Egyptian cat"
    assert "could not be loaded" in err and "exporting it again" in err and "Traceback" not in err
    assert cached.stat().st_size == len(whole)  # deleted and rebuilt, whole again


@pytest.mark.parametrize(
    "command,words",
    [
        (["embed", "{photos}", "-o", "{full}/v.parquet"], "{full}/v.parquet: cannot write the embeddings"),
        (["batch", "embed", "{photos}", "-o", "{full}/out"], "No space left on device"),
        (["index", "{photos}", "--db", "{full}/index.db", "--detector", "none"], "is full"),
    ],
    ids=["embed", "batch", "index"],
)
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(
    command: list[str], words: str, full_disk: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(photos=samples, full=full_disk) for a in command]
    assert main([*args, "-q"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and words.format(full=full_disk) in err, err
    assert "standard output" not in err
    leftovers = [p.name for p in full_disk.rglob("*") if p.is_file() and p.name != "filler"]
    assert not [n for n in leftovers if "partial" in n or n.endswith(".tmp") or n.endswith(".parquet")], (
        leftovers
    )


def test_an_intact_index_on_a_full_disk_is_still_searched(
    small_disk: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = small_library(samples, small_disk / "photos", small_disk / "index.db")
    fill(small_disk)
    capsys.readouterr()
    assert main(["search", "cat", "--db", str(db), "--format", "json", "-n", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"].endswith("cat.png")  # was "disk I/O error"
    assert main(["index", str(small_disk / "photos"), "--db", str(db), "-q"]) == 1
    assert f"the disk of {small_disk} is full" in capsys.readouterr().err
