"""Feature ensembles (`-m efficientnet_lite0+efficientnet_lite1`): trained, saved, reloaded, predicted,
used by the photo index; each member's features cached on their own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pixelsift.cli import main
from pixelsift.core.arrays import l2_normalize
from pixelsift.errors import ModelFileError, UsageError
from pixelsift.features.ensemble import EnsembleExtractor, ensemble_members
from pixelsift.features.extractor import FeatureExtractor
from pixelsift.library import PhotoIndex
from pixelsift.transfer.modelfile import read_model_file, write_model_file
from pixelsift.transfer.trained import load_trained
from pixelsift.transfer.training import TrainResult, train

PAIR = "efficientnet_lite0+efficientnet_lite1"


@pytest.fixture(scope="module")
def ensemble(shapes: Path) -> TrainResult:
    return train(shapes, model=PAIR, classifier="logreg")


def test_an_ensemble_is_its_members_l2_normalised_side_by_side(shapes: Path) -> None:
    photos = sorted(str(p) for p in (shapes / "valid").glob("*/*.jpg"))[:3]
    both = [row.vector for row in EnsembleExtractor(PAIR.split("+")).iter_features(photos)]
    for i, name in enumerate(PAIR.split("+")):
        alone = [row.vector for row in FeatureExtractor(name).iter_features(photos)]
        for vector, single in zip(both, alone, strict=True):
            assert vector is not None and single is not None and vector.shape == (2560,)
            part = vector[1280 * i : 1280 * (i + 1)]
            np.testing.assert_allclose(part, l2_normalize(single), rtol=1e-5, atol=1e-6)


def test_an_ensemble_model_round_trips_and_predicts_what_it_trained_on(
    ensemble: TrainResult, shapes: Path, tmp_path: Path
) -> None:
    model = ensemble.model
    assert model.backbone == PAIR and model.members == PAIR.split("+") and model.head.n_features == 2560
    assert ensemble.train_score == 1.0 and ensemble.valid_score >= 0.9
    info = model.backbone_info
    assert [m["name"] for m in info["members"]] == PAIR.split("+") and info["embed_dim"] == 2560
    saved = model.save(tmp_path / "pair.safetensors")
    again = load_trained(saved)
    assert again.backbone == PAIR
    photos = [str(p) for p in ensemble.train.paths]
    before, after = model.predict(photos, top_k=1), again.predict(photos, top_k=1)
    assert [r.labels for r in after] == [r.labels for r in before]
    assert [r.labels[0] for r in after] == ensemble.train.labels, "it predicts the classes it was trained on"


def test_members_features_are_cached_on_their_own(ensemble: TrainResult, shapes: Path) -> None:
    single = train(shapes, model="efficientnet_lite1", classifier="knn")
    assert single.images_run == 0, "the ensemble's run cached Lite1's features"
    again = train(shapes, model=PAIR, classifier="knn")
    assert again.images_run == 0


def test_cli_trains_predicts_and_evaluates_an_ensemble(
    ensemble: TrainResult, shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-pair.safetensors"
    assert main(["train", str(shapes), "-m", PAIR, "-o", str(out), "--no-report", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == PAIR and data["valid_score"] >= 0.9
    photo = str(next((shapes / "valid" / "blue_triangle").glob("*.jpg")))
    assert main(["predict", str(out), photo, "-k", "1", "--format", "json", "--tta", "flip"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["predictions"][0]["label"] == "blue_triangle"
    assert main(["evaluate", str(out), str(shapes), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == data["valid_score"]


def test_the_photo_index_labels_with_an_ensemble_model(
    ensemble: TrainResult, shapes: Path, tmp_path: Path
) -> None:
    model_file = ensemble.model.save(tmp_path / "pair.safetensors")
    library = tmp_path / "photos"
    shutil.copytree(shapes / "valid", library)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(library, detector="none", labelers=[model_file])
    rows = index.conn.execute("SELECT id, path FROM photos").fetchall()
    correct = 0
    for photo_id, path in rows:
        custom = [lab for lab in index.photo(photo_id)["labels"] if lab["kind"] == "custom"]
        assert custom and {c["source"] for c in custom} == {"pair"}
        correct += custom[0]["label"] == Path(path).parent.name
    assert correct >= len(rows) - 1


def test_bad_ensembles_are_one_clear_error(
    shapes: Path, ensemble: TrainResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="names the same backbone twice"):
        ensemble_members("efficientnet_lite0+EfficientNet-Lite0")
    with pytest.raises(UsageError, match="joined by '\\+'"):
        ensemble_members("efficientnet_lite0+")
    with pytest.raises(UsageError, match="fine-tuning trains one backbone"):
        from pixelsift.transfer.finetune import finetune

        finetune(shapes, model=PAIR)
    with pytest.raises(UsageError, match="ensemble of backbones"):
        ensemble.model.image_model()
    saved = ensemble.model.save(tmp_path / "pair.safetensors")
    photo = str(next((shapes / "valid" / "red_circle").glob("*.jpg")))
    assert main(["explain", photo, "--trained", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "ensemble of backbones" in err and "Traceback" not in err
    # a model file whose record of its members was damaged (and re-signed) is refused on load
    metadata, arrays = read_model_file(saved)
    metadata["backbone"]["members"] = metadata["backbone"]["members"][:1]
    write_model_file(tmp_path / "damaged.safetensors", metadata, arrays)
    with pytest.raises(ModelFileError, match="ensemble's backbones is missing or malformed"):
        load_trained(tmp_path / "damaged.safetensors")
