"""Failures are loud: an index whose detector cannot load exits 1 with the reason (and `--detector none`
still indexes, said in `index --stats` and in search notes); `batch detect` with a detector that cannot
load leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import pixelsift.detect.api as api
from pixelsift.cli import main
from pixelsift.models.records import DetectorSpec
from pixelsift.models.registry import get_model_spec

REASON = "TensorFlow importer has been removed"


@pytest.fixture
def broken_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default detector is installed but its backend fails when it loads (OpenCV 5's error)."""
    spec = get_model_spec("ssd_mobilenet_v2_coco")
    assert isinstance(spec, DetectorSpec)

    def loader(backend: str) -> Any:
        def load(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(
                f"OpenCV(5.1.0) /io/dnn.cpp:52: error: (-2:Unspecified error) {REASON} in 'readNet'\n"
            )

        return load

    monkeypatch.setattr(api, "backend_loader", loader)
    monkeypatch.setattr(api, "backend_problem", lambda spec: None)
    monkeypatch.setattr(api, "detector_readiness", lambda: ([spec], {}))


@pytest.fixture
def photos(tmp_path: Path, samples: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("astronaut.png", "chelsea.png"):
        shutil.copy(samples / name, root / name)
    return root


def test_index_with_a_detector_that_cannot_load_exits_1_with_the_reason(
    broken_detector: None, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "lib.db"
    assert main(["index", str(photos), "--db", str(db), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"ssd_mobilenet_v2_coco failed to load: {REASON}" in err
    assert "--detector none" in err and "pixelsift doctor" in err
    assert "Traceback" not in err and "\\n" not in err
    assert main(["index", str(photos), "--db", str(db), "--detector", "ssd_mobilenet_v2_coco", "-q"]) == 1


def test_detector_none_still_indexes_and_stats_and_search_say_so(
    broken_detector: None, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "lib.db"
    assert main(["index", str(photos), "--db", str(db), "--detector", "none", "-q"]) == 0
    capsys.readouterr()
    assert main(["index", "--stats", "--db", str(db), "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["photos"], stats["without_detection"], stats["detector"]) == (2, 2, "none")
    assert main(["index", "--stats", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "without detection  2 photos" in out
    assert main(["search", "person", "--db", str(db), "--format", "json"]) in (0, 1)
    err = capsys.readouterr().err
    assert "2 photos have not been seen by an object detector" in err and "'person'" in err


def test_batch_detect_with_a_detector_that_cannot_load_leaves_nothing(
    broken_detector: None, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "job"
    assert main(["batch", "detect", str(photos), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert REASON in err and "Traceback" not in err
    assert not out.exists(), "the folder the job made is gone with its _job.json"
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("the user's file")
    assert main(["batch", "detect", str(photos), "-o", str(kept), "-q"]) == 1
    assert sorted(p.name for p in kept.iterdir()) == ["mine.txt"], (
        "a folder the user gave keeps only its own files"
    )
