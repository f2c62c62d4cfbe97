"""Searching the way people ask, with the real offline classifier: phrases, messages, exit codes, one
decode path for classify / index / upload, old libraries, custom labels found through WordNet."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import SAMPLES
from helpers import indexed_without_detection, run_cli, write_image
from pixelsift import PhotoIndex
from pixelsift.cli import main
from pixelsift.library.rows import PROBS

WORDS_64 = " ".join(["cat", "dog"] * 32)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("phrases") / "photos"
    root.mkdir()
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"):
        shutil.copy(SAMPLES / name, root / name)
    write_image(root / "grey.jpg", size=(90, 60), color=(128, 128, 128), seed=3)
    return root, indexed_without_detection(root)


def test_phrases_find_what_the_words_find(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        pairs = [("my photos of cat", "cat"), ("Show me pictures of my cats", "cats"), ("a kitten", "kitten")]
        for phrase, word in pairs:
            results, plain = index.search(phrase), index.search(word)
            assert results[0].relative_path == "chelsea.png", phrase
            assert [(r.relative_path, r.score) for r in results] == [
                (r.relative_path, r.score) for r in plain
            ]
        espresso = index.search("photos of my coffee")
        assert espresso[0].relative_path == "coffee.png" and len(espresso[0].matched) >= 1


def test_unknown_words_are_named_and_the_rest_answers(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        results = index.search("a fluffy cat")
        assert results[0].relative_path == "chelsea.png"
        assert any("ignored 'fluffy'" in note for note in results.notes)


def test_cat_or_coffee_lists_both_and_cat_and_coffee_ranks_the_cat_with_all_listing_none(
    library: tuple[Path, Path],
) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        either = {r.relative_path for r in index.search("cat or espresso")}
        assert {"chelsea.png", "coffee.png"} <= either
        both = index.search("cat and espresso")
        assert [r.relative_path for r in both] == ["chelsea.png"], "the main concept's photo, ranked"
        assert both[0].weak == ["espresso"] and any("only part of the query" in n for n in both.notes)
        assert index.search("cat", n=1)[0].score > both[0].score, "a missing concept lowers the score"
        strict = index.search("cat and espresso", match_all=True)
        assert not strict and "cat AND espresso" in strict.message, "--all: no photo shows both"


def test_a_context_word_without_a_class_ranks_the_main_concept_and_all_keeps_the_and(
    library: tuple[Path, Path],
) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        cat = index.search("cat")
        beach = index.search("the beach with a cat")  # beach names no class: cat is the main concept
        assert [r.relative_path for r in beach][:1] == ["chelsea.png"] == [r.relative_path for r in cat][:1]
        assert beach[0].weak == ["beach"] and beach[0].score < cat[0].score
        assert "not clearly beach" in beach[0].matched_text()
        assert not index.search("the beach with a cat", match_all=True)


def test_a_word_reaches_its_classes_and_the_detector_class_above_it_but_no_hypernym_leaks(
    library: tuple[Path, Path],
) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        motorbike = index.searcher().understand("motorbike").terms[0]
        assert "n03785016" in motorbike.concepts, "the classifier's moped"
        assert motorbike.detection_names.get("motorcycle") == 1.0 and motorbike.confirm == {"motorcycle"}
        helicopter = index.search("helicopter")  # a heavier-than-air craft, like every airplane
        assert not helicopter and "no photo label matches 'helicopter'" in helicopter.message
        football = index.searcher().understand("football").terms[0]
        assert football.how == "related" and "sports ball" in football.detection_names


def test_nothing_is_listed_below_the_minimum_score(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        dog = index.search("dog")
        assert all(r.score >= 0.25 for r in dog), "the default minimum"
        assert "chelsea.png" not in {r.relative_path for r in dog}, "a cat is not a dog"
        weak = index.search("dog", min_score=0.0)
        assert len(weak) > len(dog), "--min-score 0 lists every photo with any evidence"


def test_filters_that_remove_every_match_say_so(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        results = index.search("cat", before="2000")
        assert not results and results.message == "1 photo matches 'cat', none taken before 2000-01-01"
        similar = index.similar(SAMPLES / "chelsea.png", before="2000")
        assert (
            not similar and "4 other photos are in the index, none taken before 2000-01-01" in similar.message
        )


def test_nothing_found_exits_1_for_every_reason_and_says_why(
    library: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = library
    cases = [
        (["search", "xyzzy"], "no photo label matches 'xyzzy'"),
        (["search", "photos of the"], "names nothing to look for"),
        (["search", "pizza"], "no photo matches 'pizza' with a score of at least 0.25"),
        (["search", "cat", "--before", "2000"], "1 photo matches 'cat', none taken before"),
        (["similar", str(SAMPLES / "chelsea.png"), "--before", "2000"], "none taken before 2000-01-01"),
    ]
    for argv, reason in cases:
        assert main([*argv, "--db", str(db)]) == 1, argv
        assert reason in capsys.readouterr().err, argv
    assert main(["search", "my photos of cat", "--db", str(db)]) == 0


@pytest.mark.parametrize("query", [WORDS_64, "c" * 10_000])
def test_an_overlong_query_is_one_clear_line_and_exit_2(library: tuple[Path, Path], query: str) -> None:
    _, db = library
    result = run_cli("search", query, "--db", str(db))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "at most" in result.stderr


class BigDetector:
    """A detector that needs more pixels than the classifier (like Faster R-CNN's 800) and finds
    nothing."""

    name = "big-fake"
    decode_size = 800
    concurrent = True

    def prepare_input(self, image: Any) -> Any:
        return image

    def detect_prepared(self, inputs: list[Any]) -> list[Any]:
        from pixelsift.detect import Detections

        return [Detections.empty() for _ in inputs]


def test_a_photo_has_the_same_scores_in_classify_the_index_and_an_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    import pixelsift.detect
    from pixelsift import classify
    from pixelsift.web import WebConfig, create_app

    root = tmp_path / "photos"
    root.mkdir()
    photo = root / "big-cat.jpg"  # large enough that JPEG draft decoding changes the pixels
    Image.open(SAMPLES / "chelsea.png").convert("RGB").resize((1800, 1200)).save(photo, quality=92)
    monkeypatch.setattr(pixelsift.detect, "load_detector", lambda *a, **k: BigDetector())
    with PhotoIndex(tmp_path / "i.db") as index:
        index.update(root, detector="big-fake")
        [(_, stored)] = index.store.vectors_of(PROBS, [1])
    names = classify([photo], top_k=1000)[0]
    from_classify = dict(zip(names.labels, names.scores, strict=True))
    from pixelsift.models.registry import get_model_spec

    categories = get_model_spec("efficientnet_lite0").categories
    from_index = dict(zip(categories, stored.tolist(), strict=True))
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig()))
    response = client.post(
        "/api/classify?k=1000", files={"file": ("big-cat.jpg", photo.read_bytes(), "image/jpeg")}
    )
    from_upload = {p["label"]: p["score"] for p in response.json()["predictions"]}
    for label in categories:
        assert from_index[label] == pytest.approx(from_classify[label], abs=1e-5), label
        assert from_upload[label] == pytest.approx(from_classify[label], abs=1e-5), label


def test_an_index_from_before_kept_only_top_classes_until_it_is_classified_again(
    tmp_path: Path,
) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(SAMPLES / "chelsea.png", root / "cat.png")
    db = tmp_path / "i.db"
    with PhotoIndex(db) as index:
        index.update(root, detector="none")
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM embeddings WHERE space = ?", (PROBS,))  # as an index of the last release
    conn.commit()
    conn.close()
    with PhotoIndex(db) as index:
        old = index.search("cat")
        assert [r.relative_path for r in old] == ["cat.png"], "searched from the stored top 5 classes"
        report = index.update()
        assert report.annotated == {"classified again": 1}
        assert index.store.count_vectors(PROBS) == 1
        assert index.search("cat")[0].score >= old[0].score - 1e-6, "all classes count now"


def test_a_broader_word_finds_what_a_labeler_labelled(library: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = library
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    with PhotoIndex(copy) as index:
        coffee = index.conn.execute("SELECT id FROM photos WHERE path = 'coffee.png'").fetchone()[0]
        rocket = index.conn.execute("SELECT id FROM photos WHERE path = 'rocket.jpg'").fetchone()[0]
        assert not index.search("cake"), "before the labels (and the searcher has read the label names)"
        with index.store.transaction():
            index.store.next_seq()  # as the indexer does in each batch it writes
            index.store.set_custom_labels(coffee, "desserts", [("chocolate_cake", 0.9)])
            index.store.set_custom_labels(rocket, "desserts", [("spring_rolls", 0.8)])
        cake = index.search("cake")
        assert [r.relative_path for r in cake] == ["coffee.png"], "chocolate_cake is a cake (WordNet)"
        assert cake[0].matched[0].source == "labeler" and cake[0].matched[0].label == "chocolate_cake"
        assert "rocket.jpg" in {r.relative_path for r in index.search("food")}, "a spring roll is food"
        assert index.search("chocolate cake")[0].relative_path == "coffee.png", "by its own name too"


def test_serve_finds_the_index_search_would_use(
    library: tuple[Path, Path],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import uvicorn

    root, _ = library
    assert main(["index", str(root), "--detector", "none", "-q"]) == 0  # into $PIXELSIFT_HOME
    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.setdefault("app", app))
    monkeypatch.chdir(root)
    assert main(["serve", "--port", "8765"]) == 0
    config = started["app"].state.config
    assert config.db is not None and Path(config.db).parent == home / "libraries"
    assert f"searching the photo index {config.db}" in capsys.readouterr().err
    other = root.parent / "other"
    other.mkdir()
    shutil.copy(root / "grey.jpg", other / "grey.jpg")
    assert main(["index", str(other), "--detector", "none", "-q"]) == 0  # a second library
    monkeypatch.chdir(root.parent)  # inside neither
    for command in (["search", "cat"], ["serve", "--port", "8765"]):
        assert main(command) == 2, command  # the same answer from both: pick one
        assert "several photo indexes exist" in capsys.readouterr().err, command


def test_a_misspelling_is_corrected_and_says_so(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        for typed, meant in (("cta", "cat"), ("espreso", "espresso")):
            results = index.search(f"my photos of {typed}")
            assert f"showing results for {meant!r} (you typed {typed!r})" in results.notes, results.notes
            assert [r.relative_path for r in results] == [r.relative_path for r in index.search(meant)]
        assert index.search("cta")[0].relative_path == "chelsea.png"
        assert index.searcher().correction("beech") is None  # a real word that names nothing here


def test_an_ambiguous_misspelling_corrects_nothing_and_lists_the_candidates(
    library: tuple[Path, Path],
) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        # boat, bolt, boot and post are each one letter away: no one of them is clearly meant
        assert index.searcher().correction("bost") is None
        results = index.search("bost")
        assert not results and not any("showing results" in n for n in results.notes)
        assert "nearest known labels" in results.message


def test_a_compound_name_is_not_split_into_other_words(library: tuple[Path, Path]) -> None:
    _, db = library
    with PhotoIndex(db) as index:
        query = index.searcher().understand("spring rolls")
        assert query.unknown == ["spring rolls"] and not query.groups  # was spring AND roll
        assert [t.text for t in index.searcher().understand("a cat and spring rolls").terms] == ["cat"]
