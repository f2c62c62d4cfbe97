"""Scene regions in a real index: every photo is looked at once, the words people use for sky, grass,
trees and roads find them ("lawn", "street"), older indexes catch up without re-classifying, and no
labeler may take the regions' name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES
from helpers import indexed_without_detection, run_cli
from pixelsift import PhotoIndex
from pixelsift.errors import UsageError
from pixelsift.imaging import scene
from pixelsift.library.labelers import load_labeler
from pixelsift.library.sources import SceneSource


def _two_tone(path: Path, top: tuple[int, int, int], bottom: tuple[int, int, int], rough: int = 0) -> None:
    rng = np.random.default_rng(1)
    pixels = np.zeros((240, 320, 3), np.int16)
    pixels[:120] = top
    pixels[120:] = bottom
    if rough:
        pixels[120:] += rng.integers(-rough, rough + 1, size=(120, 320, 1), dtype=np.int16)
    pixels += np.linspace(-12, 12, 240).astype(np.int16)[:, None, None]  # light changes: no flat fill
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("scene") / "photos"
    root.mkdir()
    _two_tone(root / "meadow.png", (115, 165, 240), (60, 150, 50), rough=20)
    _two_tone(root / "street.png", (115, 165, 240), (100, 100, 100))
    _two_tone(root / "wall.png", (100, 100, 100), (100, 100, 100))
    shutil.copy(SAMPLES / "chelsea.png", root / "chelsea.png")
    (root / "broken.jpg").write_bytes(b"not a photo")
    return root, indexed_without_detection(root)


def test_every_readable_photo_gets_every_region_once(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        rows = index.store.conn.execute(
            "SELECT p.path, COUNT(*) FROM labels l JOIN photos p ON p.id = l.photo_id "
            "WHERE l.kind = 'custom' AND l.source = ? GROUP BY p.path",
            (scene.SOURCE,),
        ).fetchall()
    photos = ("meadow.png", "street.png", "wall.png", "chelsea.png")
    assert dict(rows) == {name: len(scene.REGIONS) for name in photos}, "and none for the broken file"


def test_region_words_and_their_kinds_find_the_regions_as_scene_evidence(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        grass = index.search("grass")
        assert [r.relative_path for r in grass] == ["meadow.png"]
        assert grass[0].matched[0].source == "scene" and grass[0].matched[0].label == "grass"
        lawn = index.search("my photos of the lawn")
        assert [r.relative_path for r in lawn] == ["meadow.png"]
        assert lawn[0].score == pytest.approx(0.8 * grass[0].score, rel=1e-3), "a lawn is grass, weighted 0.8"
        street = [r.relative_path for r in index.search("street")]
        assert street[:1] == ["street.png"] and "wall.png" not in street
        assert {r.relative_path for r in index.search("sky")} == {"meadow.png", "street.png"}


def test_a_region_word_drops_the_classes_wordnet_puts_beside_it(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        query = index.searcher().understand("trees")
        (term,) = query.terms
        assert term.concepts == {} and term.label_names == {"tree": 1.0}, "not orange, acorn ..."


def test_a_region_as_context_ranks_the_main_concept(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        results = index.search("a cat on the grass")
        assert results[0].relative_path == "chelsea.png" and results[0].weak == ["grass"]
        assert "meadow.png" not in {r.relative_path for r in results}, "grass alone is not the main concept"


def test_an_index_without_regions_catches_up_without_classifying_again(
    library: tuple[Path, Path], tmp_path: Path
) -> None:
    root, db = library
    copy = tmp_path / "older.db"
    shutil.copy(db, copy)
    with PhotoIndex(copy) as index:
        with index.store.transaction():
            index.store.delete_custom_labels(scene.SOURCE)  # as an index written before the regions
        assert not index.search("grass")
        assert index.stats()["without_scene"] == 4
        report = index.update(root, detector="none")
        assert index.stats()["without_scene"] == 0
        assert report.added == report.updated == 0
        assert report.annotated.get(next(k for k in report.annotated if "scene" in k)) == 4
        assert [r.relative_path for r in index.search("grass")] == ["meadow.png"]
    shown = run_cli("index", "--stats", "--db", str(copy))
    assert shown.returncode == 0 and "scene regions      every photo (sky, grass, tree, road)" in shown.stdout


def test_a_labeler_may_not_take_the_regions_name(tmp_path: Path) -> None:
    model = tmp_path / "scene.safetensors"
    model.write_bytes(b"whatever")
    with pytest.raises(UsageError, match="taken by pixelsift's own scene regions"):
        load_labeler(model)


def test_a_region_word_typed_first_is_still_the_context(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        results = index.search("grass with a cat")
        assert results[0].relative_path == "chelsea.png", "the cat is what the photos are of"
        assert "meadow.png" not in {r.relative_path for r in results}


def test_a_result_names_the_regions_its_photo_clearly_shows(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        labels = {r.relative_path: r.labels for r in index.search("sky")}
    assert {"sky", "grass"} <= set(labels["meadow.png"]) and "road" not in labels["meadow.png"]
    assert {"sky", "road"} <= set(labels["street.png"]) and "grass" not in labels["street.png"]


def test_a_photos_details_list_its_regions_as_their_own_kind(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        meadow = index.search("grass")[0].id
        labels = index.photo(meadow)["labels"]
    regions = {lab["label"]: lab["score"] for lab in labels if lab["kind"] == "scene"}
    assert set(regions) == {region.name for region in scene.REGIONS} and regions["grass"] > 0.9
    assert all(lab["source"] == scene.SOURCE for lab in labels if lab["kind"] == "scene")
    assert not [lab for lab in labels if lab["kind"] == "custom"], "no labeler here"


def test_catching_up_decodes_big_jpegs_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, size=(1200, 1600, 3), dtype=np.uint8)).save(root / "big.jpg")
    with PhotoIndex(tmp_path / "i.db") as index:
        index.update(root, detector="none")
        with index.store.transaction():
            index.store.delete_custom_labels(scene.SOURCE)
        sizes: list[tuple[int, int]] = []
        real_prepare = SceneSource.prepare
        monkeypatch.setattr(
            SceneSource, "prepare", lambda self, image: sizes.append(image.size) or real_prepare(self, image)
        )
        index.update(root, detector="none")
    assert sizes and max(min(s) for s in sizes) <= 300, f"a draft decode, not 1600x1200: {sizes}"
