"""A classifier trained with `pixelsift train` (real efficientnet_lite0 features) labels a photo library,
and its labels are searchable; a model whose backbone layers were fine-tuned is refused as a labeler
with a reason, since the library's stored features do not fit it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import pixelsift
from pixelsift.errors import UsageError
from pixelsift.library import PhotoIndex
from pixelsift.library.labelers import load_labeler

CLASSES = ("red_circle", "green_square", "blue_triangle")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes") / "set"
    return pixelsift.make_shapes_dataset(root, classes=CLASSES, train_per_class=8, valid_per_class=3, seed=3)


def test_trained_labels_are_stored_and_searchable(shapes: Path, tmp_path: Path) -> None:
    result = pixelsift.train(shapes, classifier="logreg")
    assert result.valid_score >= 0.9
    model_file = tmp_path / "shapes.safetensors"
    result.model.save(model_file)

    library = tmp_path / "photos"
    shutil.copytree(shapes / "valid", library)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(library, detector="none", labelers=[model_file])

    rows = index.conn.execute("SELECT id, path FROM photos").fetchall()
    assert len(rows) == 3 * len(CLASSES)
    correct = 0
    for photo_id, path in rows:
        custom = [lab for lab in index.photo(photo_id)["labels"] if lab["kind"] == "custom"]
        assert {c["source"] for c in custom} == {"shapes"}
        assert sorted(c["label"] for c in custom) == sorted(CLASSES)
        correct += custom[0]["label"] == Path(path).parent.name
    assert correct >= len(rows) - 1, f"{correct} of {len(rows)} photos labelled with their class"

    for query in ("blue_triangle", "blue triangles", "Blue Triangle"):
        top = index.search(query, n=3)
        assert [Path(r.relative_path).parent.name for r in top].count("blue_triangle") >= 2, query


def test_a_model_with_finetuned_backbone_layers_is_refused_as_labeler(shapes: Path, tmp_path: Path) -> None:
    from pixelsift.transfer.finetune import FinetuneOptions

    options = FinetuneOptions(epochs=2, layers=1, backbone_epochs=1, augment_views=0)
    result = pixelsift.finetune(shapes, options=options)
    assert result.model.backbone_modified
    model_file = tmp_path / "tuned.safetensors"
    result.model.save(model_file)
    with pytest.raises(UsageError, match="fine-tuned"):
        load_labeler(model_file)


def test_a_labeler_labels_only_photos_like_its_training_photos(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from conftest import SAMPLES
    from pixelsift.cli import main
    from pixelsift.transfer.trained import load_trained

    result = pixelsift.train(shapes, classifier="logreg", reject_test=SAMPLES)
    gate = result.model.domain
    assert gate is not None and gate.valid_rejected is not None and gate.valid_rejected <= 0.1
    assert result.reject_test is not None and result.reject_test.rate == 1.0, "no sample photo is a shape"
    model_file = tmp_path / "shapes.safetensors"
    result.model.save(model_file)
    reloaded = load_trained(model_file)
    assert reloaded.domain is not None and reloaded.domain.threshold == pytest.approx(gate.threshold)
    valid_photo = sorted((shapes / "valid").rglob("*.jpg"))[0]
    verdicts = reloaded.predict([SAMPLES / "coffee.png", valid_photo], top_k=1)
    assert [v.recognised for v in verdicts] == [False, True], "predict says which photos it knows"
    assert verdicts[0].to_dict()["recognised"] is False
    assert reloaded.training["domain"]["reject_test"]["rejected"] == result.reject_test.photos

    library = tmp_path / "photos"
    shutil.copytree(shapes / "valid", library / "shapes")
    shutil.copytree(SAMPLES, library / "other", ignore=shutil.ignore_patterns("*.md", "*.txt"))
    index = PhotoIndex(tmp_path / "i.db")
    index.update(library, detector="none", labelers=[model_file])
    labelled, refused = 0, 0
    for photo_id, path in index.conn.execute("SELECT id, path FROM photos WHERE status = 'ok'").fetchall():
        info = index.photo(photo_id)
        custom = [lab for lab in info["labels"] if lab["kind"] == "custom"]
        if path.startswith("other/"):
            assert not custom and info["unrecognised_by"] == ["shapes"], f"{path} got {custom}"
            refused += 1
        else:
            labelled += bool(custom)
    assert refused >= 4 and labelled >= 3 * len(CLASSES) - 1, (refused, labelled)
    assert all(r.relative_path.startswith("shapes/") for r in index.search("red circle", min_score=0.0))
    assert index.update().annotated == {}, "photos it did not recognise are not looked at again"

    assert main(["train", str(shapes), "--reject-test", str(SAMPLES), "--format", "json", "--no-report",
                 "-o", str(tmp_path / "cli.safetensors")]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["domain"]["reject_test"]["rate"] == 1.0 and report["domain"]["threshold"] > 0
