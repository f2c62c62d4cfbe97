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
