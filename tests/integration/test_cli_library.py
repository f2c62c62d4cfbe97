"""`pixelsift index`, `search` and `similar` as users meet them: output formats, messages, exit codes."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_image
from pixelsift.cli import main


@pytest.fixture
def library(
    tmp_path: Path, samples: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, str]:
    """(photo folder, index file, what `pixelsift index` printed)."""
    root = tmp_path / "photos"
    shutil.copytree(samples, root)
    write_image(root / "more" / "g.jpg", size=(64, 48), seed=3)
    db = tmp_path / "index.db"
    assert main(["index", str(root), "--db", str(db), "--detector", "none", "-q"]) == 0
    return root, db, capsys.readouterr().out


def test_index_prints_a_summary_and_a_second_run_does_nothing(
    library: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, db, out = library
    assert f"indexed {root.resolve()}: 6 photos, 6 new" in out and f"index: {db}" in out
    assert main(["index", str(root), "--db", str(db), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["unchanged"], report["photos"]) == (0, 6, 6)


def test_search_table_json_and_csv(
    library: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, db, _ = library
    assert main(["search", "cat", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["score", "path", "matched", "labels"]
    score, path, *rest = lines[1].split()
    assert path == str(root.resolve() / "chelsea.png") and len(score.split(".")[1]) == 3
    assert rest[0] == "cat:" and {"tabby,", "tiger", "Egyptian"} & set(rest[1:]), "what matched, then labels"
    monkeypatch.chdir(root)
    assert main(["search", "cat", "--db", str(db)]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "chelsea.png", "relative to where you are"

    assert main(["search", "cats", "--db", str(db), "--format", "json", "-n", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 1 <= len(data) <= 2 and Path(data[0]["path"]).name == "chelsea.png"
    from pixelsift.library.search import RESULT_FIELDS

    assert list(data[0]) == list(RESULT_FIELDS), "the shape of SearchResult.to_dict and the web API"
    assert isinstance(data[0]["labels"], list)
    assert data[0]["matched"][0]["concept"] == "cat" and data[0]["matched"][0]["source"] == "classifier"
    assert data[0]["score"] > 0.9

    assert main(["search", "cats", "--db", str(db), "--format", "jsonl", "-n", "2"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == data, "one a line"

    assert main(["search", "espresso", "--db", str(db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert Path(rows[0]["path"]).name == "coffee.png" and float(rows[0]["score"]) > 0.9


def test_search_all_keeps_the_strict_and_and_json_names_the_weak_concepts(
    library: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db, _ = library
    assert main(["search", "cat and espresso", "--db", str(db), "--format", "json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert Path(data[0]["path"]).name == "chelsea.png" and data[0]["weak"] == ["espresso"]
    assert "only part of the query" in out.err and "--all" in out.err
    assert main(["search", "cat and espresso", "--db", str(db), "--all"]) == 1
    assert "no photo matches 'cat AND espresso'" in capsys.readouterr().err
    assert main(["search", "cat", "--db", str(db), "--all", "--format", "json"]) == 0, "one concept: as ever"
    assert json.loads(capsys.readouterr().out)[0]["weak"] == []


def test_search_filters_by_folder_and_by_label(
    library: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db, _ = library
    assert main(["search", "cat", "--db", str(db), "--folder", "more"]) == 1
    assert "none in the folder 'more'" in capsys.readouterr().err
    assert main(["search", "cat", "--db", str(db), "--label", "espresso", "--format", "json"]) == 1
    assert "labelled or showing 'espresso'" in capsys.readouterr().err
    assert main(["search", "espresso", "--db", str(db), "--label", "CUP", "--format", "json"]) == 0
    assert [Path(r["path"]).name for r in json.loads(capsys.readouterr().out)] == ["coffee.png"]


def test_no_match_says_so_with_suggestions_and_exit_1(
    library: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db, _ = library
    capsys.readouterr()
    assert main(["search", "bost", "--db", str(db), "--format", "json"]) == 1  # no clear correction
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "no photo label matches 'bost'" in err and "boat" in err
    assert main(["search", "pizza", "--db", str(db)]) == 1, "nothing listed: exit 1, whatever the reason"
    assert "no photo matches 'pizza' with a score of at least 0.25" in capsys.readouterr().err


def test_similar_and_search_find_the_index_without_db(
    library: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _, _ = library
    assert main(["index", str(root), "--detector", "none", "-q"]) == 0  # the default location
    capsys.readouterr()
    monkeypatch.chdir(root / "more")
    assert main(["search", "coffee", "--format", "json"]) == 0
    assert Path(json.loads(capsys.readouterr().out)[0]["path"]).name == "coffee.png"
    assert main(["similar", str(root / "chelsea.png"), "-n", "3", "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3 and "chelsea.png" not in [Path(r["path"]).name for r in results]


def test_unreadable_photos_and_missing_weights_exit_1_usage_errors_exit_2(
    tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(samples / "coffee.png", root)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    db = tmp_path / "i.db"
    assert main(["index", str(root), "--db", str(db), "--detector", "none"]) == 1
    err = capsys.readouterr().err
    assert f"pixelsift: {root.resolve() / 'broken.jpg'}: not an image" in err and "Traceback" not in err
    assert main(["index", str(root), "--db", str(db), "--detector", "none"]) == 0, "reported once"
    assert "broken.jpg" not in capsys.readouterr().err
    assert main(["index", str(root), "--db", str(db), "--detector", "yolov8n"]) == 1
    assert "weights for model 'yolov8n' are missing" in capsys.readouterr().err
    assert main(["index", str(root), "--db", str(db), "--detector", "resnet18"]) == 2
    assert "detection needs a detector" in capsys.readouterr().err
    assert main(["search", "cat", "--db", str(tmp_path / "nothing.db")]) == 1
    assert "no photo index at" in capsys.readouterr().err
    assert main(["search", "cat", "--db", str(db), "--after", "last tuesday"]) == 2
    assert "--after 'last tuesday'" in capsys.readouterr().err


def test_commands_are_listed_and_load_no_heavy_libraries() -> None:
    code = (
        "import sys, pixelsift.cli as c; p = c.build_parser(); "
        "assert not {'torch', 'open_clip', 'faiss', 'cv2'} & set(sys.modules), sorted(sys.modules); "
        "p.parse_args(['search', 'x']); print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    helptext = subprocess.run(
        [sys.executable, "-m", "pixelsift", "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    assert all(command in helptext for command in ("index", "search", "similar"))


def test_index_with_the_onnxruntime_engine_gives_the_same_labels(
    library: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    from pixelsift.library import PhotoIndex

    root, torch_db, _ = library
    ort_db = tmp_path / "ort.db"
    args = ["index", str(root), "--db", str(ort_db), "--detector", "none", "-q", "--engine", "onnxruntime"]
    assert main(args) == 0
    capsys.readouterr()

    def top_labels(db: Path) -> dict[str, str]:
        with PhotoIndex(db) as index:
            rows = index.conn.execute(
                "SELECT p.path, l.label FROM photos p JOIN labels l ON l.photo_id = p.id "
                "WHERE l.kind = 'class' ORDER BY p.path, l.score DESC"
            ).fetchall()
        top: dict[str, str] = {}
        for path, label in rows:
            top.setdefault(path, label)
        return top

    torch_top, ort_top = top_labels(torch_db), top_labels(ort_db)
    assert len(ort_top) == 6 and ort_top == torch_top
    assert list((tmp_path / "home").rglob("*.onnx")), "the exported model is cached in PIXELSIFT_HOME"
