"""`--tta flip` for predict and evaluate: each photo's probabilities averaged with its mirror image's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from pixelsift.cli import main
from pixelsift.errors import UsageError
from pixelsift.transfer.trained import TrainedModel
from pixelsift.transfer.training import train


@pytest.fixture(scope="module")
def trained(shapes: Path) -> TrainedModel:
    # weakly regularised logistic regression is sure of every shape; a strong prior leaves room to differ
    return train(shapes, classifier="logreg", params={"C": 0.01}).model


def _scores(model: TrainedModel, photo: Path, tta: str = "none") -> dict[str, float]:
    (result,) = model.predict(photo, top_k=len(model.classes), tta=tta)
    return dict(zip(result.labels, result.scores, strict=True))


def test_flip_is_the_mean_of_the_photo_and_its_mirror_image(
    trained: TrainedModel, shapes: Path, tmp_path: Path
) -> None:
    photo = next((shapes / "valid" / "blue_triangle").glob("*.jpg"))
    mirror = tmp_path / "mirror.png"  # lossless: the same pixels, mirrored
    ImageOps.mirror(Image.open(photo).convert("RGB")).save(mirror)
    plain, flipped, both = _scores(trained, photo), _scores(trained, mirror), _scores(trained, photo, "flip")
    expected = {c: (plain[c] + flipped[c]) / 2 for c in trained.classes}
    assert both == pytest.approx(expected, abs=0.01)
    assert max(abs(plain[c] - flipped[c]) for c in trained.classes) > 0.001, (
        "the mirror image is another view"
    )


def test_flip_keeps_the_order_and_the_errors_of_the_inputs(
    trained: TrainedModel, shapes: Path, tmp_path: Path
) -> None:
    photos = sorted((shapes / "valid").glob("*/*.jpg"))[:3]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    results = trained.predict([photos[0], broken, *photos[1:]], top_k=1, tta="flip")
    assert [r.path for r in results] == [str(p) for p in (photos[0], broken, *photos[1:])]
    assert results[1].error and all(r.ok for i, r in enumerate(results) if i != 1)


def test_evaluate_with_flip_scores_the_same_photos(trained: TrainedModel, shapes: Path) -> None:
    plain = trained.evaluate(shapes)
    flipped = trained.evaluate(shapes, tta="flip")
    assert flipped.paths == plain.paths and flipped.accuracy >= 0.9
    assert not np.allclose(flipped.proba, plain.proba), "the mirror images changed the probabilities"
    with pytest.raises(UsageError, match="unknown test-time augmentation 'rotate'"):
        trained.evaluate(shapes, tta="rotate")


def test_cli_predict_and_evaluate_take_tta(
    trained: TrainedModel, shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = trained.save(tmp_path / "m.safetensors")
    photo = str(next((shapes / "valid" / "red_circle").glob("*.jpg")))
    assert main(["predict", str(model), photo, "--tta", "flip", "-k", "1", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["predictions"][0]["label"] == "red_circle"
    assert main(["evaluate", str(model), str(shapes), "--tta", "flip", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["score"] >= 0.9
    with pytest.raises(SystemExit) as bad:
        main(["evaluate", str(model), str(shapes), "--tta", "rotate"])
    assert bad.value.code == 2 and "invalid choice: 'rotate'" in capsys.readouterr().err
