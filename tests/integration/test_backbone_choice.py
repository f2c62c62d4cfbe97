"""`pixelsift train -m auto` for real: two backbones embed the photos, the better one is kept."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pixelsift.cli import main
from pixelsift.models import registry
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import get_spec_of
from pixelsift.transfer.trained import load_trained
from pixelsift.transfer.training import train

BAD = "saturated_lite0"


@pytest.fixture
def bad_backbone(monkeypatch: pytest.MonkeyPatch) -> str:
    """EfficientNet-Lite0's weights fed pixels scaled 500x too strongly: a deliberately bad backbone."""
    spec = get_spec_of("efficientnet_lite0", ClassifierSpec)
    saturated = Preprocessing(resize=256, crop=224, mean=(0.0, 0.0, 0.0), std=(0.001, 0.001, 0.001))
    monkeypatch.setitem(registry._REGISTRY, BAD, dataclasses.replace(spec, name=BAD, preprocessing=saturated))
    return BAD


def test_auto_keeps_the_good_backbone_and_reports_both(shapes: Path, bad_backbone: str) -> None:
    heard: list[str] = []
    result = train(
        shapes, model="auto", candidates=[bad_backbone, "efficientnet_lite0"], on_backbone=heard.append
    )
    choice = result.backbones
    assert choice is not None and choice.chosen == "efficientnet_lite0"
    scores = {s.backbone: s for s in choice.scores}
    assert scores["efficientnet_lite0"].cv_score > scores[bad_backbone].cv_score + 0.05
    assert all(s.ms_per_photo > 0 for s in choice.scores)
    assert result.model.backbone == "efficientnet_lite0" and result.valid_score >= 0.9
    assert [line.split(":")[0] for line in heard][:2] == [bad_backbone, "efficientnet_lite0"]
    assert result.to_dict()["backbones"]["chosen"] == "efficientnet_lite0"


def test_cli_auto_prints_the_comparison_and_saves_the_chosen_backbone(
    shapes: Path, bad_backbone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "auto.safetensors"
    candidates = f"efficientnet_lite0,{bad_backbone}"
    args = ["train", str(shapes), "-m", "auto", "--candidates", candidates, "-o", str(out), "--no-report"]
    assert main([*args, "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["model"] == "efficientnet_lite0" and data["backbones"]["chosen"] == "efficientnet_lite0"
    tried = {c["backbone"] for c in data["backbones"]["candidates"]}
    assert tried == {"efficientnet_lite0", bad_backbone, f"efficientnet_lite0+{bad_backbone}"}
    assert "pixelsift: -m auto: efficientnet_lite0: cross-validated accuracy" in captured.err
    assert load_trained(out).backbone == "efficientnet_lite0"

    out.unlink()
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("backbone ")))
    assert lines[header].split() == ["backbone", "cv", "score", "std", "ms/photo"]
    starred = [line for line in lines[header + 1 :] if line.startswith("* ")]
    assert len(starred) == 1 and starred[0].split()[1] == "efficientnet_lite0", "the chosen one is starred"
    assert any(line.startswith("Chosen: efficientnet_lite0") for line in lines)


def test_finetune_refuses_auto_and_names_what_to_do(shapes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(shapes), "-m", "auto", "--finetune"]) == 2
    err = capsys.readouterr().err
    assert "--finetune trains one backbone: name it with -m" in err and "Traceback" not in err
