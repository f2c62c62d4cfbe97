"""Report files: confusion matrix and prediction grid images, metrics JSON; mistakes come first."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import write_image
from pixelsift.errors import MissingDependencyError
from pixelsift.transfer.evaluation import Evaluation
from pixelsift.transfer.reports import _pick_photos, report_folder, write_report


def evaluation(tmp_path: Path) -> Evaluation:
    """6 photos; 1 and 4 are mistakes, and 5 is of a class the model lacks (a mistake too)."""
    labels = ["a", "a", "b", "b", "b", "c"]
    paths = [str(write_image(tmp_path / f"{i}.jpg", size=(80, 60), seed=i)) for i in range(len(labels))]
    predicted = [0, 1, 1, 1, 0, 1]
    proba = np.full((6, 2), 0.2)
    proba[np.arange(6), predicted] = 0.8
    return Evaluation(["a", "b"], paths, labels, proba)


def test_metrics_numbers(tmp_path: Path) -> None:
    ev = evaluation(tmp_path)
    assert ev.accuracy == pytest.approx(3 / 6)  # the unknown class counts as a mistake
    assert ev.unknown_labels == ["c"]
    assert ev.confusion().to_numpy().tolist() == [[1, 1], [1, 2], [0, 1]]
    per_class = ev.per_class()
    assert per_class.loc["b", "recall"] == pytest.approx(2 / 3)
    assert per_class.loc["b", "precision"] == pytest.approx(2 / 4)


def test_mistakes_come_first_then_every_class(tmp_path: Path) -> None:
    ev = evaluation(tmp_path)
    assert _pick_photos(ev, 4) == [1, 4, 5, 0]
    assert _pick_photos(ev, 2) == [1, 4]


def test_write_report_makes_two_images_and_the_metrics_file(tmp_path: Path) -> None:
    import matplotlib

    backend = matplotlib.get_backend()
    report = write_report(tmp_path / "r", evaluation(tmp_path), title="demo", extra={"model": "m"})
    assert matplotlib.get_backend() == backend, "a notebook's plotting backend is left alone"
    for png in (report.confusion_matrix, report.predictions):
        assert png is not None
        with Image.open(png) as img:
            assert img.format == "PNG" and img.width > 300 and img.height > 300
    metrics = json.loads(report.metrics.read_text())
    assert metrics["model"] == "m"
    assert metrics["evaluation"]["score"] == pytest.approx(3 / 6)
    assert [p["correct"] for p in metrics["photos"]] == [True, False, True, True, False, False]
    assert metrics["photos"][1] == {
        "path": str(tmp_path / "1.jpg"),
        "true": "a",
        "predicted": "b",
        "score": 0.8,
        "correct": False,
    }


def test_without_matplotlib_the_error_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(MissingDependencyError, match=r"pixelsift\[reports\]"):
        write_report(tmp_path / "r", evaluation(tmp_path))
    assert (tmp_path / "r" / "metrics.json").is_file(), "the numbers are written anyway"


def test_report_folder_sits_beside_the_model() -> None:
    assert report_folder("out/birds.safetensors") == Path("out/birds.report")
