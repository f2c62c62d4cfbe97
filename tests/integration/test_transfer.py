"""`pixelsift train / predict / evaluate` and their Python API, with the real offline default model."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from pixelsift.cli import main
from pixelsift.errors import ModelFileError, WeightsInvalidError, WeightsMissingError
from pixelsift.imaging.datasets import read_dataset
from pixelsift.runtime.loaded import ImageModel
from pixelsift.transfer import training as transfer
from pixelsift.transfer.heads import DenseHead
from pixelsift.transfer.trained import TrainedModel, load_trained
from pixelsift.transfer.training import train


def valid_paths(root: Path) -> list[str]:
    return [str(s.path) for s in read_dataset(root).samples_of("valid")]


def test_synthetic_set_reaches_0_9_and_the_reloaded_model_predicts_identically(
    shapes: Path, tmp_path: Path
) -> None:
    result = train(shapes)
    assert result.valid_score >= 0.9
    assert result.train_score >= result.valid_score - 0.1
    assert result.model.classes == ["blue_triangle", "green_square", "red_circle", "yellow_cross"]
    path = result.model.save(tmp_path / "shapes.safetensors")
    reloaded = load_trained(path)
    assert (reloaded.backbone, reloaded.classes, reloaded.classifier) == (
        "efficientnet_lite0",
        result.model.classes,
        "logreg",
    )
    before = result.model.predict(valid_paths(shapes), top_k=4)
    after = reloaded.predict(valid_paths(shapes), top_k=4)
    assert [(r.labels, r.scores) for r in after] == [(r.labels, r.scores) for r in before], "bit-identical"
    frame = after.to_pandas()
    assert list(frame.columns) == ["path", "rank", "label", "score", "error"] and len(frame) == 16 * 4


@pytest.mark.parametrize("name", ["svm", "knn", "forest", "mlp"])
def test_every_classifier_trains_and_reloads_identically(shapes: Path, tmp_path: Path, name: str) -> None:
    result = train(shapes, classifier=name)
    assert result.valid_score >= 0.9, (name, result.valid_score)
    reloaded = load_trained(result.model.save(tmp_path / f"{name}.safetensors"))
    assert reloaded.classifier == name and reloaded.params == result.model.params
    features = np.random.default_rng(0).normal(size=(5, 1280)).astype(np.float32)
    np.testing.assert_array_equal(
        reloaded.predict_proba_from_features(features), result.model.predict_proba_from_features(features)
    )


def test_predict_proba_from_raw_backbone_features(shapes: Path) -> None:
    """The photo index stores raw `iter_outputs` features; the model must score them like photos."""
    model = train(shapes).model
    paths = valid_paths(shapes)[:6]
    raw = np.stack([f for _, f, _ in ImageModel.load(model.backbone).iter_outputs(paths)])
    proba = model.predict_proba_from_features(raw)
    assert proba.shape == (6, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    predicted = model.predict(paths, top_k=1)
    assert [model.classes[i] for i in proba.argmax(1)] == [r.labels[0] for r in predicted]
    np.testing.assert_allclose(proba.max(1), [r.scores[0] for r in predicted], rtol=1e-5)
    with pytest.raises(Exception, match=r"shape \(N, 1280\)"):
        model.predict_proba_from_features(raw[:, :100])


def test_cli_train_json_then_evaluate_agrees(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    assert main(["train", str(shapes), "-c", "logreg", "-o", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("train_score", "valid_score", "classes", "per_class", "model", "classifier"):
        assert key in data
    assert data["model"] == "efficientnet_lite0" and data["classifier"] == "logreg"
    assert data["holdout"] is False and (data["n_train"], data["n_valid"]) == (32, 16)
    assert set(data["per_class"]) == set(data["classes"])
    assert set(data["per_class"]["red_circle"]) == {"precision", "recall", "f1", "support"}
    report = Path(data["report"])
    assert report == tmp_path / "m.report"
    assert {p.name for p in report.iterdir()} == {"confusion_matrix.png", "predictions.png", "metrics.json"}
    assert json.loads((report / "metrics.json").read_text())["valid_score"] == data["valid_score"]

    assert main(["evaluate", str(out), str(shapes), "--format", "json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["score"] == data["valid_score"]
    assert evaluation["per_class"] == data["per_class"]
    assert main(["evaluate", str(out), str(shapes / "valid"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == data["valid_score"], "a split folder works too"


def test_cli_train_table_and_predict(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "knn.safetensors"
    assert main(["train", str(shapes), "-c", "knn", "-o", str(out), "--no-report"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    scores = {
        line.split(" score ")[0]: float(line.split(" score ")[1].split()[0])
        for line in lines
        if " score " in line
    }
    assert set(scores) == {"Training", "Validation"} and scores["Validation"] >= 0.9
    (line,) = [line for line in lines if line.startswith("Validation score")]
    n = len(list((shapes / "valid").rglob("*.jpg")))
    assert line.endswith(f"on {n} photos)") and "(95% interval 0." in line, line
    if n < 30:
        assert f"the validation score rests on {n} photos" in captured.err
    header = next(i for i, line in enumerate(lines) if line.startswith("class "))
    assert lines[header].split() == ["class", "precision", "recall", "support"]
    assert len(lines[header + 1 : header + 5]) == 4 and lines[header + 1].split()[0] == "blue_triangle"
    assert not (tmp_path / "knn.report").exists()

    photo = valid_paths(shapes)[0]
    assert main(["predict", str(out), photo, str(tmp_path / "nope.jpg"), "-k", "2", "--format", "json"]) == 1
    captured = capsys.readouterr()
    ok, missing = json.loads(captured.out)
    assert ok["path"] == photo and len(ok["predictions"]) == 2
    assert ok["predictions"][0]["label"] == Path(photo).parent.name
    assert missing["error"] == "no such file or folder"
    assert "1 of 2 inputs failed" in captured.err


def test_no_valid_split_uses_a_stratified_holdout_and_says_so(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "flat"
    shutil.copytree(shapes / "train", root)  # class folders only, 8 photos each
    out = tmp_path / "flat.safetensors"
    assert main(["train", str(root), "-o", str(out), "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "no valid/ split" in printed and "stratified hold-out of 20% of each class (8 images)" in printed
    result = train(root)
    assert result.data.holdout and len(result.valid.paths) == 8 and len(result.train.paths) == 24
    assert {Path(p).parent.name for p in result.valid.paths} == set(result.model.classes), "every class"
    assert not set(result.valid.paths) & set(result.train.paths)


def test_a_corrupt_photo_in_a_class_folder_is_reported_and_skipped(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shapes"
    shutil.copytree(shapes, root)
    corrupt = root / "train" / "red_circle" / "zz_corrupt.jpg"
    data = (root / "train" / "red_circle" / "red_circle_000.jpg").read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    out = tmp_path / "m.safetensors"
    code = main(["train", str(root), "-o", str(out), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1, "an input failed: exit code 1, but training completed"
    data_out = json.loads(captured.out)
    assert data_out["n_train"] == 32 and data_out["valid_score"] >= 0.9
    assert data_out["failures"] == [{"path": str(corrupt), "error": data_out["failures"][0]["error"]}]
    assert f"pixelsift: {corrupt}: corrupt or truncated image" in captured.err
    assert "Traceback" not in captured.err
    assert load_trained(out).classes == data_out["classes"]


@pytest.mark.slow
def test_search_cross_validates_on_the_training_split_only(
    shapes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = transfer.search_classifier

    def spy(X: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5, progress: bool | None = False):  # type: ignore[no-untyped-def]
        seen.append(len(X))
        return real(X, y, seed, folds, progress)

    monkeypatch.setattr(transfer, "search_classifier", spy)
    result = train(shapes, search=True)
    assert seen == [32], "only the 32 training photos"
    assert result.search is not None
    assert set(result.search["classifier"]) == {"logreg", "svm", "knn", "forest", "mlp"}
    best = result.search["cv_score"].max()
    chosen = result.search[(result.search["classifier"] == result.model.classifier)]
    assert best in set(chosen["cv_score"]) and result.model.params in list(chosen["params"])
    assert result.valid_score >= 0.9
    assert "search" in result.to_dict()


def test_a_second_classifier_on_the_same_photos_does_not_run_the_network(
    home: Path, shapes: Path, network_calls: list[int]
) -> None:
    calls = network_calls
    first = train(shapes, classifier="logreg")
    assert sum(calls) == 48 and first.images_run == 48
    second = train(shapes, classifier="forest")
    assert sum(calls) == 48 and second.images_run == 0


def test_a_tampered_model_file_is_refused_by_the_cli(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = train(shapes).model.save(tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    data[data.index(b"red_circle")] = ord("R")  # a class renamed inside the JSON description
    path.write_bytes(bytes(data))
    assert main(["predict", str(path), valid_paths(shapes)[0]]) == 1
    err = capsys.readouterr().err
    assert "checksum does not match" in err and "Traceback" not in err


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch /tmp/pixelsift-trained-pwned",))


def test_a_pickle_renamed_to_a_model_file_runs_nothing(tmp_path: Path) -> None:
    marker = Path("/tmp/pixelsift-trained-pwned")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(ModelFileError, match="never loaded"):
        load_trained(evil)
    result = run_cli("predict", str(evil), str(tmp_path))
    assert result.returncode == 1 and "not a pixelsift model file" in result.stderr
    assert not marker.exists()


def _tiny_model(backbone: str, dim: int, weights_sha256: str | None = None) -> TrainedModel:
    from pixelsift.models.registry import get_model_spec

    spec = get_model_spec(backbone)
    assert spec.preprocessing is not None
    head = DenseHead([np.ones((2, dim))], [np.zeros(2)])
    info = {"preprocessing": spec.preprocessing.to_dict(), "weights_sha256": weights_sha256}
    return TrainedModel(backbone, ["a", "b"], head, classifier="logreg", backbone_info=info)


def test_a_model_whose_backbone_weights_are_missing_says_how_to_get_them(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _tiny_model("resnet18", 512).save(tmp_path / "r.safetensors")
    with pytest.raises(WeightsMissingError, match="resnet18"):
        load_trained(path)
    assert main(["predict", str(path), str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "pixelsift models fetch resnet18" in err and "Traceback" not in err


def test_a_model_trained_on_other_weights_is_refused(tmp_path: Path) -> None:
    path = _tiny_model("efficientnet_lite0", 1280, weights_sha256="0" * 64).save(tmp_path / "m.safetensors")
    with pytest.raises(WeightsInvalidError, match="put the original weights file back"):
        load_trained(path)


@pytest.mark.shared
@pytest.mark.slow
def test_birds_logistic_regression_reaches_0_95(shared: Path) -> None:
    result = train(shared / "datasets" / "birds", classifier="logreg")
    assert result.valid_score >= 0.95
    assert len(result.valid.paths) == 34 and len(result.train.paths) == 142


@pytest.mark.slow
def test_linear_classifiers_are_not_over_regularised_on_unit_vectors(tmp_path: Path) -> None:
    """Shapes that differ only in outline, under heavy noise: on plain unit-length vectors the default
    logistic regression reached 0.83 here; scaled to unit RMS per feature it reaches 0.97."""
    from pixelsift.imaging.datasets import make_shapes_dataset

    classes = (
        "red_circle",
        "red_square",
        "red_triangle",
        "orange_circle",
        "orange_square",
        "orange_triangle",
    )
    root = make_shapes_dataset(
        tmp_path / "hard", classes, train_per_class=10, valid_per_class=5, noise=70, seed=1
    )
    for name in ("logreg", "svm"):
        result = train(root, classifier=name)
        assert result.valid_score >= 0.9, (name, result.valid_score)


def test_a_saved_model_labels_stored_features_without_importing_torch(tmp_path: Path) -> None:
    """The photo index labels photos from their stored features: loading the model file and predicting
    from features must not pay torch's import (seconds on a small CPU) on an unchanged re-index."""
    from pixelsift.models.registry import get_model_spec

    weights = get_model_spec("efficientnet_lite0").weights
    assert weights is not None and weights.sha256 is not None
    path = _tiny_model("efficientnet_lite0", 1280, weights.sha256).save(tmp_path / "m.safetensors")
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import pixelsift\n"
        f"model = pixelsift.load_trained({str(path)!r})\n"
        "print(model.predict_proba_from_features(np.ones((1, 1280), np.float32)).shape)\n"
        "print(sorted({'torch', 'torchvision', 'cv2'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["(1, 2)", "[]"]


def test_train_never_replaces_a_model_without_force(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "m.safetensors"
    assert main(["train", str(shapes), "-o", str(out), "--no-report", "-q"]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["train", str(shapes), "-o", str(out), "--no-report", "-q", "-c", "knn"]) == 2
    assert "a model is already there; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before, "refused before any training"
    assert main(["train", str(shapes), "-o", str(out), "--no-report", "-q", "-c", "knn", "--force"]) == 0
    assert out.read_bytes() != before
    monkeypatch.chdir(tmp_path)  # the default name: a second model gets a free one
    for _ in range(2):
        assert main(["train", str(shapes), "--no-report", "-q"]) == 0
    name = f"{shapes.resolve().name}-logreg"
    assert sorted(p.name for p in tmp_path.glob(f"{name}*.safetensors")) == [
        f"{name}-2.safetensors",
        f"{name}.safetensors",
    ]


def test_search_shows_a_bar_over_its_candidates(capsys: pytest.CaptureFixture[str]) -> None:
    from pixelsift.transfer.classifiers import CLASSIFIERS, search_classifier

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (6, 8)), rng.normal(3, 1, (6, 8))]).astype(np.float32)
    y = np.array([0] * 6 + [1] * 6)
    search_classifier(X, y, progress=True)
    err = capsys.readouterr().err
    candidates = sum(len(c.grid) for c in CLASSIFIERS.values())
    assert "--search" in err and f"{candidates}/{candidates}" in err, err[-300:]


def test_evaluate_warns_when_the_photos_are_ones_the_model_was_trained_on(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    assert main(["train", str(shapes), "-o", str(out), "--no-report", "-q"]) == 0
    capsys.readouterr()
    n_train = len(list((shapes / "train").rglob("*.jpg")))
    assert main(["evaluate", str(out), str(shapes), "--split", "train", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["seen_in_training"] == n_train
    assert f"{n_train} of {n_train} photos are ones this model was trained on" in captured.err
    assert main(["evaluate", str(out), str(shapes), "--format", "json"]) == 0  # valid/: never seen
    captured = capsys.readouterr()
    assert json.loads(captured.out)["seen_in_training"] == 0 and "trained on" not in captured.err
