"""A file name that is not UTF-8 (`bad\\xff\\xfename.png`, from an old camera card or a Latin-1 system)
is a photo like any other: classified, embedded, indexed, searched, trained on and run in batch, kept
exactly where pixelsift stores it, and shown with `\\xNN` escapes wherever text goes out (JSON stays
valid UTF-8)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from pixelsift.cli import main
from pixelsift.core.paths import data_frame, path_columns, path_text, paths_from_columns
from pixelsift.core.sqlite import connect

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Windows file names are UTF-16, never bytes")

RAW = b"bad\xff\xfename.png"
NAME = os.fsdecode(RAW)  # as os.listdir gives it: the two bytes as surrogates
SHOWN = "bad\\xff\\xfename.png"  # as pixelsift prints it


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cat under a name that is not UTF-8, a cup of coffee and an astronaut under ordinary names."""
    samples = Path(__file__).resolve().parents[2] / "samples"
    root = tmp_path_factory.mktemp("names") / "photos"
    root.mkdir()
    shutil.copy(samples / "chelsea.png", os.fsencode(root) + b"/" + RAW)
    shutil.copy(samples / "coffee.png", root / "coffee.png")
    shutil.copy(samples / "astronaut.png", root / "astronaut.png")
    assert NAME in os.listdir(root)
    return root


def test_path_text_escapes_only_the_bytes_that_are_not_utf8() -> None:
    assert path_text("/p/" + NAME) == "/p/" + SHOWN
    assert path_text("/p/café.jpg") == "/p/café.jpg"  # UTF-8 names are unchanged
    assert path_text("/p/" + NAME).encode("utf-8")  # and the result is always valid UTF-8


def test_path_columns_keep_the_bytes_and_give_the_names_back() -> None:
    names = ["/p/" + NAME, "/p/ok.jpg", None]
    columns = path_columns(names)
    assert columns["path"] == ["/p/" + SHOWN, "/p/ok.jpg", None]
    assert columns["path_bytes"][0] == b"/p/" + RAW
    assert paths_from_columns(columns["path"], columns["path_bytes"]) == names[:2]
    assert "path_bytes" not in path_columns(["/p/ok.jpg"])  # no extra column when every name is UTF-8


def test_a_data_frame_holds_the_exact_name() -> None:
    frame = data_frame({"path": [NAME, "ok.jpg"], "score": [0.5, 0.25]})
    assert list(frame["path"]) == [NAME, "ok.jpg"]
    assert frame["score"].dtype == np.float64


def test_sqlite_stores_queries_and_gives_back_the_exact_name(tmp_path: Path) -> None:
    conn = connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("CREATE TABLE t (path TEXT PRIMARY KEY, n INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(NAME, 1), ("ok.jpg", 2)])
    assert conn.execute("SELECT n FROM t WHERE path = ?", (NAME,)).fetchone() == (1,)
    assert sorted(p for (p,) in conn.execute("SELECT path FROM t")) == sorted([NAME, "ok.jpg"])
    with pytest.raises(Exception, match="UNIQUE"):
        conn.execute("INSERT INTO t VALUES (?, 3)", (NAME,))


def _valid_utf8(text: str) -> str:
    text.encode("utf-8")  # raises on a lone surrogate
    return text


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_classify_prints_the_name_escaped_in_every_format(
    fmt: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["classify", str(folder), "--format", fmt, "-k", "1"]) == 0
    out = _valid_utf8(capsys.readouterr().out)
    if fmt == "json":
        paths = [r["path"] for r in json.loads(out)]
        assert str(folder / SHOWN) in paths and len(paths) == 3
    else:
        lines = out.splitlines()
        at = next(i for i, line in enumerate(lines) if SHOWN in line)
        assert "cat" in " ".join(lines[at : at + 3])  # the cat under the odd name was classified as one


def test_embed_keeps_the_name_in_parquet_and_escapes_it_in_csv(folder: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    assert main(["embed", str(folder), "-o", str(tmp_path / "v.parquet"), "-q"]) == 0
    table = pq.read_table(tmp_path / "v.parquet").to_pydict()
    assert os.fsencode(folder / NAME) in table["path_bytes"]
    assert str(folder / SHOWN) in table["path"]
    assert main(["embed", str(folder), "-o", str(tmp_path / "v.csv"), "-q", "--no-cache"]) == 0
    assert SHOWN in _valid_utf8((tmp_path / "v.csv").read_text(encoding="utf-8"))


def test_the_python_api_gives_the_exact_name(folder: Path) -> None:
    import pixelsift

    frame = pixelsift.classify(folder, top_k=1).to_pandas()
    assert str(folder / NAME) in list(frame["path"])
    assert Path(str(folder / NAME)).is_file()  # the name in the table opens the file


def test_index_search_and_similar_find_the_photo(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "index.db")
    assert main(["index", str(folder), "--db", db, "--detector", "none", "-q"]) == 0
    capsys.readouterr()
    assert main(["search", "cat", "--db", db, "--format", "json", "-n", "1"]) == 0
    (best,) = json.loads(_valid_utf8(capsys.readouterr().out))
    assert best["path"] == str(folder / SHOWN)
    assert main(["similar", str(folder / "coffee.png"), "--db", db, "--format", "json"]) == 0
    assert str(folder / SHOWN) in [r["path"] for r in json.loads(_valid_utf8(capsys.readouterr().out))]
    # an unchanged re-index finds the photo as it is (no second row, nothing failed)
    assert main(["index", str(folder), "--db", db, "--detector", "none", "--format", "json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unchanged"] == 3 and report["failed"] == []


def test_the_web_api_answers_valid_json_with_the_name(folder: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from pixelsift.library import PhotoIndex
    from pixelsift.web import WebConfig, create_app

    db = tmp_path / "index.db"
    with PhotoIndex(db) as index:
        index.update(folder, detector="none")
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(db=db)))
    response = client.get("/api/search", params={"q": "cat", "n": 1})
    assert response.status_code == 200
    (best,) = json.loads(response.content.decode("utf-8"))  # strict UTF-8
    assert best["path"] == SHOWN
    assert client.get(f"/api/photos/{best['id']}").status_code == 200  # and the photo itself is served


def test_train_and_predict_read_a_class_folder_with_such_a_name(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    for label, sample in (("cat", folder / NAME), ("cup", folder / "coffee.png")):
        (data / label).mkdir(parents=True)
        for i in range(3):
            shutil.copy(sample, os.fsencode(data / label) + b"/" + RAW.replace(b"bad", str(i).encode()))
    model = tmp_path / "model"
    assert main(["train", str(data), "-o", str(model), "-q"]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(folder), "--format", "json", "-k", "1"]) == 0
    rows = json.loads(_valid_utf8(capsys.readouterr().out))
    assert {r["path"]: r["predictions"][0]["label"] for r in rows}[str(folder / SHOWN)] == "cat"


def test_a_batch_job_writes_resumes_and_reads_such_a_name(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixelsift.batch import read

    out = tmp_path / "out"
    assert main(["batch", "classify", str(folder), "-o", str(out), "-q"]) == 0
    frame = read(out)
    assert list(frame["path_bytes"]).count(os.fsencode(folder / NAME)) == 1
    assert frame["error"].isna().all()
    capsys.readouterr()
    # resumed: every row is recognised as done, the odd name included
    assert main(["batch", "classify", str(folder), "-o", str(out), "--resume", "-q", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["processed"] == 0 and summary["skipped"] == 3


def test_an_ascii_terminal_gets_escaped_names_not_a_traceback(folder: Path, tmp_path: Path) -> None:
    plain = tmp_path / "café"
    plain.mkdir()
    shutil.copy(folder / "coffee.png", plain / "crème.png")
    result = run_cli("classify", str(plain), "-k", "1", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "cr\\xe8me.png" in result.stdout
