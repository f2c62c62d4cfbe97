"""Explanations localise: with real weights a photo pasted into one quadrant of a grey canvas is
found in that quadrant by every method; a model trained on the shapes set looks at the shape (against
a random-box baseline); every registry family builds a map with random weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelsift.cli import main
from pixelsift.explain import METHODS, Explainer
from pixelsift.explain.cam import CamModel
from pixelsift.models.registry import list_models

pytest.importorskip("pytorch_grad_cam")

QUADRANTS = {"top-left": (0, 0), "top-right": (1, 0), "bottom-left": (0, 1), "bottom-right": (1, 1)}


def canvas_with(photo: Path, quadrant: str, side: int = 448) -> Image.Image:
    canvas = Image.new("RGB", (side, side), (128, 128, 128))
    qx, qy = QUADRANTS[quadrant]
    canvas.paste(
        Image.open(photo).convert("RGB").resize((side // 2, side // 2)), (qx * side // 2, qy * side // 2)
    )
    return canvas


def in_quadrant(point: tuple[float, float], quadrant: str, side: int = 448) -> bool:
    qx, qy = QUADRANTS[quadrant]
    return qx * side / 2 <= point[0] < (qx + 1) * side / 2 and qy * side / 2 <= point[1] < (qy + 1) * side / 2


@pytest.fixture(scope="module")
def explainers() -> dict[str, Explainer]:
    return {method: Explainer("efficientnet_lite0", method=method) for method in METHODS}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_real_weights_find_the_photo_in_its_quadrant(
    method: str, explainers: dict[str, Explainer], samples: Path
) -> None:
    quadrant = list(QUADRANTS)[list(METHODS).index(method) % 4]  # each method on another quadrant
    image = canvas_with(samples / "chelsea.png", quadrant)
    (result,) = explainers[method].explain_image(image, "canvas.png", k=1)
    assert "cat" in result.label  # the top class is the cat's
    assert result.peak is not None and result.box is not None
    assert in_quadrant(result.peak, quadrant), (method, result.peak, result.box)
    x1, y1, x2, y2 = result.box
    assert in_quadrant(((x1 + x2) / 2, (y1 + y2) / 2), quadrant), (method, result.box)
    assert result.heatmap is not None and result.heatmap.shape == (448, 448)
    assert float(result.heatmap.min()) >= 0.0 and float(result.heatmap.max()) <= 1.0


@pytest.mark.slow
def test_a_trained_model_looks_at_the_shape(shapes: Path, tmp_path: Path) -> None:
    from pixelsift.transfer.training import train

    model = train(shapes).model.save(tmp_path / "shapes.safetensors")
    where = json.loads((shapes / "shapes.json").read_text())
    explainer = Explainer(trained=model)
    hits, chance = [], []
    for rel, (x1, y1, x2, y2) in where.items():
        if not rel.startswith("valid/"):
            continue
        (result,) = explainer.explain_image(Image.open(shapes / rel).convert("RGB"), rel, k=1)
        assert result.peak is not None
        px, py = result.peak
        hits.append(x1 <= px <= x2 and y1 <= py <= y2)
        chance.append((x2 - x1) * (y2 - y1) / 128**2)  # a random point's chance to fall in the box
    hit_rate, baseline = float(np.mean(hits)), float(np.mean(chance))
    print(f"peak inside the shape: {hit_rate:.0%} of {len(hits)} photos; random point: {baseline:.0%}")
    assert hit_rate >= 0.6 and hit_rate >= baseline + 0.25, (hit_rate, baseline)


@pytest.mark.slow
def test_every_registry_family_builds_a_map_with_random_weights() -> None:
    import torch

    from pixelsift.explain.networks import _Logits
    from pixelsift.models.network import split_at_last_linear
    from pixelsift.models.registry import get_model_spec

    torch.manual_seed(0)
    timm = [get_model_spec(n) for n in ("timm/resnet18", "timm/vit_tiny_patch16_224")]  # CNN, transformer
    for spec in [*list_models(task="classify"), *timm]:
        if spec.build is None:
            continue
        split = (spec.split or split_at_last_linear)(spec.build())
        size = spec.preprocessing.crop
        cam = CamModel(_Logits(split.body, split.head).eval(), split.body, size, spec.cam_layer)
        heat = cam.heatmap(np.random.default_rng(0).normal(size=(3, size, size)).astype(np.float32), 3)
        assert heat.shape == (size, size), spec.name
        assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() <= 1.0, spec.name


def test_an_unknown_class_is_a_clear_error_with_suggestions(
    samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", str(samples / "chelsea.png"), "--class", "tigr cat"])
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert "has no class 'tigr cat'" in err and "tiger cat" in err


def test_the_command_saves_overlays_reports_bad_inputs_and_keeps_originals(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    original = (samples / "coffee.png").read_bytes()
    code = main(
        [
            "explain",
            str(samples / "coffee.png"),
            str(bad),
            "-k",
            "2",
            "--save",
            str(tmp_path / "out"),
            "--format",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1 and "notes.jpg" in err
    rows = json.loads(out)
    good = [r for r in rows if "error" not in r]
    assert [r["rank"] for r in good] == [1, 2] and good[0]["label"] == "espresso"
    for row in good:
        saved = Path(row["saved"])
        assert saved.parent == tmp_path / "out" and Image.open(saved).size == (600, 400)
        x1, y1, x2, y2 = row["box"]
        assert 0 <= x1 < x2 <= 600 and 0 <= y1 < y2 <= 400
    assert (samples / "coffee.png").read_bytes() == original


@pytest.mark.slow
def test_a_fine_tuned_model_is_explained_through_its_own_layers(shapes: Path, tmp_path: Path) -> None:
    from pixelsift.transfer.finetune import FinetuneOptions, finetune

    result = finetune(shapes, options=FinetuneOptions(epochs=3, layers=1, backbone_epochs=1, augment_views=0))
    assert result.model.backbone_modified
    path = result.model.save(tmp_path / "tuned.safetensors")
    explainer = Explainer(trained=path, method="gradcam")
    where = json.loads((shapes / "shapes.json").read_text())
    rel = next(r for r in where if r.startswith("valid/"))
    (explained,) = explainer.explain_image(Image.open(shapes / rel).convert("RGB"), rel, k=1)
    assert explained.label in result.model.classes and explained.heatmap is not None
    assert explained.heatmap.shape == (128, 128) and 0.9 < float(explained.heatmap.max()) <= 1.0
    # the fine-tuned tensors are the ones in the explained network, not the stock backbone's
    state = result.model.backbone_state
    assert state is not None
    key = next(iter(state))
    body = explainer.cam.forward.body.state_dict()
    assert np.allclose(body[key].cpu().numpy(), state[key])


def test_a_linear_svm_is_explained_by_its_gradients(shapes: Path, tmp_path: Path) -> None:
    """The Platt-calibrated linear SVM is a dense linear head: gradient methods run through it, and the
    scores they report are the model's own probabilities."""
    from pixelsift.transfer.trained import load_trained
    from pixelsift.transfer.training import train

    path = train(shapes, classifier="svm").model.save(tmp_path / "svm.safetensors")
    model = load_trained(path)
    rel = next(r for r in json.loads((shapes / "shapes.json").read_text()) if r.startswith("valid/"))
    image = Image.open(shapes / rel).convert("RGB")
    (result,) = Explainer(trained=path, method="gradcam").explain_image(image, rel, k=1)
    # explanations run in fp32; so does this prediction (auto would pick bf16 on a CPU with AMX)
    (prediction,) = model.predict([shapes / rel], precision="fp32")
    assert result.label == prediction.labels[0]
    assert result.score == pytest.approx(prediction.scores[0], abs=1e-3)
    assert result.peak is not None and result.heatmap.max() > 0.5  # a map, not the blank of no gradient
