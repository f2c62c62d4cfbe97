"""The text in photos as an evidence source of the index: `index --ocr`, `search --text`, and the text
part of a plain query. Real PP-OCR networks on made photos; the classifier is the offline default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from helpers import REPO, run_cli, text_photo
from pixelsift.library import PhotoIndex

pytest.importorskip("rapidocr", reason="the ocr extra")

PHOTOS = {
    "plate.jpg": dict(lines=["RE16 TGK"]),
    "card.jpg": dict(lines=["Happy Birthday", "Anna"], background=REPO / "samples" / "coffee.png"),
    "cafe.png": dict(lines=["Café Zürich", "Open 24h"], angle=90),
    "wifi.png": dict(lines=["WiFi password", "sunflower42"], blur=1.0),
    "menu.png": dict(lines=["Birthday cake 4.50"], font_size=28),  # small print: less prominent
}


def make_library(root: Path) -> Path:
    root.mkdir(parents=True)
    for name, spec in PHOTOS.items():
        text_photo(**spec).save(root / name)  # type: ignore[arg-type]
    shutil.copy(REPO / "samples" / "chelsea.png", root / "cat.png")  # a photo without text
    return root


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> PhotoIndex:
    tmp = tmp_path_factory.mktemp("textlib")
    index = PhotoIndex(tmp / "library.db")
    report = index.update(make_library(tmp / "photos"), detector="none", ocr=True)
    assert report.added == 6 and not report.failed
    return index


def top(results: object) -> list[str]:
    return [r.relative_path for r in results]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("RE16", "plate.jpg"),  # part of a line: "RE16 TGK"
        ("re16 tgk", "plate.jpg"),  # the whole line, any case
        ("tgk", "plate.jpg"),
        ("cafe zurich", "cafe.png"),  # a phrase without its accents, read at 90 degrees
        ("CAFÉ", "cafe.png"),
        ("flower", "wifi.png"),  # part of a word: "sunflower42"
        ("pasword", "wifi.png"),  # one letter missing
        ("wifi passwrod", "wifi.png"),  # a phrase with two letters swapped
        ("birthdya", "card.jpg"),  # misspelt; the big card before the small print of the menu
    ],
)
def test_text_search_ranks_the_photo_that_shows_it_first(
    library: PhotoIndex, typed: str, expected: str
) -> None:
    results = library.search_text(typed)
    assert top(results)[0] == expected
    assert results[0].matched[0].source == "text"


def test_exact_text_outranks_a_misspelling_and_big_letters_outrank_small_print(library: PhotoIndex) -> None:
    exact = library.search_text("birthday")
    assert top(exact)[:2] == ["card.jpg", "menu.png"]
    assert exact[0].score > exact[1].score
    fuzzy = library.search_text("birthdy")
    assert fuzzy[0].score < exact[0].score


def test_a_word_written_nowhere_finds_nothing(library: PhotoIndex) -> None:
    for word in ("zebra", "password42x", "RE17 TGX"):
        results = library.search_text(word)
        assert list(results) == [] and "no photo shows the text" in results.message


def test_a_plain_query_finds_the_text_too_and_says_so(library: PhotoIndex) -> None:
    results = library.search("happy birthday")
    assert top(results)[0] == "card.jpg"
    assert results[0].matched_text().startswith('text: "Happy Birthday"')
    cat = library.search("cat")  # a word no photo's text shows: the visual evidence alone
    assert top(cat)[0] == "cat.png" and all(e.source != "text" for r in cat for e in r.matched)


def test_the_store_keeps_lines_words_and_boxes(library: PhotoIndex) -> None:
    (photo_id,) = [i for i, p in library.conn.execute("SELECT id, path FROM photos WHERE path = 'plate.jpg'")]
    lines = library.store.text_of([photo_id])[photo_id]
    assert [line.text for line in lines] == ["RE16 TGK"]
    assert [w[0] for w in lines[0].words] == ["RE16", "TGK"]
    x1, y1, x2, y2 = lines[0].box
    assert 0 <= x1 < x2 <= 900 and 0 <= y1 < y2 <= 600 and 0.05 < lines[0].size < 0.2
    stats = library.stats()
    assert stats["ocr"] and stats["text_read"] == 6


def test_rotating_a_photo_keeps_its_text_searchable(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    text_photo(["Main Street"]).save(root / "sign.jpg", quality=95)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none", ocr=True)
    assert top(index.search_text("main street")) == ["sign.jpg"]
    with Image.open(root / "sign.jpg") as img:  # what a photo app's "rotate" writes: the pixels turned
        turned = img.rotate(90, expand=True)
    turned.save(root / "sign.jpg", quality=95)
    report = index.update(root)  # --ocr remembered
    assert report.updated == 1
    assert top(index.search_text("main street")) == ["sign.jpg"]
    exif = Image.Exif()
    exif[0x0112] = 6  # ... or only the EXIF orientation changed
    turned.save(root / "sign.jpg", quality=95, exif=exif)
    index.update(root)
    assert top(index.search_text("street")) == ["sign.jpg"]


def test_an_index_made_before_ocr_catches_up_when_it_is_turned_on(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    text_photo(["RE16 TGK"]).save(root / "plate.png")
    text_photo(["Open 24h"]).save(root / "shop.png")
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")
    assert "index with --ocr" in index.search_text("RE16").message
    report = index.update(root, ocr=True)
    assert report.added == 0 and report.annotated.get("read for text") == 2
    assert top(index.search_text("RE16")) == ["plate.png"]
    text_photo(["Happy Birthday"]).save(root / "card.png")
    assert index.update(root).annotated.get("read for text") is None  # the new photo is read as it is added
    assert top(index.search_text("birthday")) == ["card.png"]
    index.update(root, ocr=False)
    text_photo(["Main Street"]).save(root / "sign.png")
    index.update(root)
    assert list(index.search_text("street")) == []  # --no-ocr: new photos are not read
    assert top(index.search_text("RE16")) == ["plate.png"]  # ... and what was read stays


def test_deleted_and_copied_photos_leave_the_text_index_consistent(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    text_photo(["RE16 TGK"]).save(root / "plate.png")
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none", ocr=True)
    shutil.copy(root / "plate.png", root / "copy.png")
    report = index.update(root)
    assert report.copied == 1 and report.annotated.get("read for text") is None  # copied, not read again
    assert sorted(top(index.search_text("RE16"))) == ["copy.png", "plate.png"]
    (root / "plate.png").unlink()
    index.update(root)
    assert top(index.search_text("RE16")) == ["copy.png"]
    index.conn.execute("INSERT INTO text_search (text_search) VALUES ('integrity-check')")  # raises if not


def test_cli_index_ocr_and_search_text(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    text_photo(["RE16 TGK"]).save(root / "plate.png")
    db = str(tmp_path / "i.db")
    indexed = run_cli("index", str(root), "--db", db, "--ocr", "--detector", "none")
    assert indexed.returncode == 0, indexed.stderr
    found = run_cli("search", "--db", db, "--text", "re16", "--format", "json")
    assert found.returncode == 0, found.stderr
    (result,) = json.loads(found.stdout)
    assert result["relative_path"] == "plate.png"
    assert result["matched"][0]["source"] == "text" and result["matched"][0]["label"] == "RE16 TGK"
    nothing = run_cli("search", "--db", db, "--text", "zebra")
    assert nothing.returncode == 1 and "no photo shows the text 'zebra'" in nothing.stderr
    both = run_cli("search", "--db", db, "cat", "--text", "re16")
    assert both.returncode == 2 and "not both" in both.stderr
    stats = run_cli("index", "--stats", "--db", db)
    assert "read in 1 photos, 1 lines" in stats.stdout


def test_index_ocr_without_the_package_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    text_photo(["RE16 TGK"]).save(root / "plate.png")
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "rapidocr.py").write_text("raise ImportError('blocked for the test')\n")
    result = run_cli(
        "index", str(root), "--db", str(tmp_path / "i.db"), "--ocr", env={"PYTHONPATH": str(blocker)}
    )
    assert result.returncode == 1
    assert "pip install 'pixelsift[ocr]'" in result.stderr and "Traceback" not in result.stderr
