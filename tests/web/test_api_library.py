"""REST API over a photo index: search, similar, photos, thumbnails, and every way to escape the library."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from helpers import write_image
from pixelsift.library import PhotoIndex
from pixelsift.web import WebConfig, create_app

SECRET = b"TOP-SECRET-FILE-CONTENTS"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(photos folder, index db, a secret file outside the library that a symlink points to)."""
    base = tmp_path_factory.mktemp("weblib")
    photos = base / "photos"
    samples = Path(__file__).resolve().parents[2] / "samples"
    photos.mkdir()
    shutil.copy(samples / "chelsea.png", photos / "cat.png")
    shutil.copy(samples / "coffee.png", photos / "coffee.png")
    write_image(photos / "trip" / "red.jpg", size=(120, 90))
    secret = base / "secret.jpg"  # a real photo outside the library, carrying a marker in its bytes
    Image.new("RGB", (64, 64), (10, 200, 10)).save(secret, comment=SECRET)
    assert SECRET in secret.read_bytes()
    os.symlink(secret, photos / "escape.jpg")  # a file symlink out of the library
    db = base / "index.db"
    with PhotoIndex(db) as index:  # links followed: the server must refuse what an index lets through
        index.update(photos, detector="none", follow_links=True)
    yield photos, db, secret


@pytest.fixture
def client(library: tuple[Path, Path, Path]) -> TestClient:
    return TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(db=library[1])))


def photo_id(client: TestClient, relative: str) -> int:
    with PhotoIndex(client.app.state.config.db, create=False) as index:  # type: ignore[attr-defined]
        row = index.conn.execute("SELECT id FROM photos WHERE path = ?", (relative,)).fetchone()
    assert row, relative
    return int(row[0])


def test_search_cat_returns_the_cat_photo_first_with_relative_paths(client: TestClient) -> None:
    results = client.get("/api/search", params={"q": "cat", "n": 5}).json()
    assert results[0]["path"] == "cat.png"
    assert results[0]["id"] == photo_id(client, "cat.png")
    assert results[0]["score"] > 0 and results[0]["labels"]
    assert not any(os.path.isabs(r["path"]) for r in results)


def test_search_ranks_a_partial_match_after_full_ones_and_all_lists_only_full_ones(
    client: TestClient,
) -> None:
    response = client.get("/api/search", params={"q": "cat and espresso"})
    results = response.json()
    assert [r["path"] for r in results] == ["cat.png"] and results[0]["weak"] == ["espresso"]
    assert "only part of the query" in response.headers["x-pixelsift-note"]
    strict = client.get("/api/search", params={"q": "cat and espresso", "all": "true"})
    assert strict.json() == [] and "cat AND espresso" in strict.headers["x-pixelsift-message"]


def test_a_result_has_the_shape_python_and_the_cli_give_with_a_relative_path(
    client: TestClient, library: tuple[Path, Path, Path]
) -> None:
    from pixelsift.library.search import RESULT_FIELDS

    api = client.get("/api/search", params={"q": "cat", "n": 1}).json()[0]
    with PhotoIndex(library[1], create=False) as index:
        python = index.search("cat", n=1)[0].to_dict()
    assert list(api) == list(python) == list(RESULT_FIELDS)
    assert api["path"] == api["relative_path"] == python["relative_path"] == "cat.png"
    assert Path(python["path"]).is_absolute() and not Path(api["path"]).is_absolute()
    assert {k: v for k, v in api.items() if k != "path"} == {k: v for k, v in python.items() if k != "path"}


def test_the_library_view_pages_every_photo_newest_first_with_the_filters(
    client: TestClient, library: tuple[Path, Path, Path]
) -> None:
    first = client.get("/api/photos", params={"limit": 2}).json()
    rest = client.get("/api/photos", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == rest["total"] >= 3 and len(first["photos"]) == 2
    paths = [p["path"] for p in first["photos"] + rest["photos"]]
    assert len(set(paths)) == len(paths) and {"cat.png", "coffee.png", "trip/red.jpg"} <= set(paths)
    with PhotoIndex(library[1], create=False) as index:
        total, every = index.photos(0, 100)
    served = [r.relative_path for r in every if r.relative_path != "escape.jpg"]  # a link out: never sent
    assert total == first["total"] and served == paths, "Python and the API list in one order"
    trip = client.get("/api/photos", params={"folder": "trip"}).json()
    assert [p["path"] for p in trip["photos"]] == ["trip/red.jpg"] and trip["total"] == 1
    cats = client.get("/api/photos", params={"label": "Egyptian cat"}).json()
    assert [p["path"] for p in cats["photos"]] == ["cat.png"], "by a label's name, any case"
    assert client.get("/api/photos", params={"after": "2999"}).json() == {
        "total": 0,
        "offset": 0,
        "photos": [],
    }
    assert client.get("/api/photos", params={"folder": "../etc"}).status_code == 400
    searched = client.get("/api/search", params={"q": "cat", "folder": "trip"})
    assert searched.json() == [] and "in the folder 'trip'" in searched.headers["x-pixelsift-message"]
    header = client.get("/api/library").json()
    assert header["folder"] == library[0].name and header["last_indexed"] > 0


def test_search_without_match_says_why(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "zebra crossing lighthouse"})
    assert response.status_code == 200 and response.json() == []
    message = response.headers["x-pixelsift-message"]
    assert "no photo matches" in message and "lighthouse" in message and "at least 0.25" in message
    # a zebra crossing is a street crossing, one name: not a zebra
    assert "ignored 'zebra crossing'" in response.headers["x-pixelsift-note"]
    response = client.get("/api/search", params={"q": "xyzzy plugh"})
    assert response.status_code == 200 and response.json() == []
    assert "no photo label matches 'xyzzy', 'plugh'" in response.headers["x-pixelsift-message"]


def test_results_say_what_matched(client: TestClient) -> None:
    [first, *_] = client.get("/api/search", params={"q": "show me photos of cats"}).json()
    assert first["path"] == "cat.png"
    assert first["matched"][0]["concept"] == "cat" and first["matched"][0]["source"] == "classifier"
    assert first["matched"][0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}


@pytest.mark.parametrize("query", [" ".join(["cat"] * 64), "cat " * 2500, "x" * 10_000])
def test_an_overlong_query_is_a_400_with_a_reason_never_a_500(client: TestClient, query: str) -> None:
    response = client.get("/api/search", params={"q": query})
    assert response.status_code == 400, response.text
    assert "at most" in response.json()["error"]


def test_ignored_words_are_named_in_a_header(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "fluffy cat"})
    assert response.status_code == 200 and response.json()[0]["path"] == "cat.png"
    assert "ignored 'fluffy'" in response.headers["x-pixelsift-note"]


def test_a_corrected_misspelling_is_named_in_a_header(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "my photos of a cta"})
    assert response.status_code == 200 and response.json()[0]["path"] == "cat.png"
    assert "showing results for 'cat' (you typed 'cta')" in response.headers["x-pixelsift-note"]


def test_similar_excludes_the_photo_itself(client: TestClient) -> None:
    cat = photo_id(client, "cat.png")
    results = client.get(f"/api/similar/{cat}", params={"n": 5}).json()
    assert results and cat not in [r["id"] for r in results]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    floor = (scores[0] + scores[-1]) / 2 if scores[0] > scores[-1] else scores[0] + 1e-6
    above = client.get(f"/api/similar/{cat}", params={"n": 5, "min_score": floor}).json()
    assert [r["id"] for r in above] == [r["id"] for r in results if r["score"] >= floor], "min_score cuts"


def test_photos_like_an_uploaded_photo_come_best_first_and_a_non_image_is_415(client: TestClient) -> None:
    import io

    from PIL import Image, ImageEnhance

    samples = Path(__file__).resolve().parents[2] / "samples"
    brighter = ImageEnhance.Brightness(Image.open(samples / "coffee.png").convert("RGB")).enhance(1.1)
    buffer = io.BytesIO()
    brighter.save(buffer, "JPEG", quality=90)
    files = {"file": ("my-coffee.jpg", buffer.getvalue(), "image/jpeg")}
    results = client.post("/api/similar", files=files, params={"n": 3}).json()
    assert results[0]["path"] == "coffee.png" and results[0]["score"] > 0.9, "the library's coffee photo"
    same = client.post(
        "/api/similar", files={"file": ("c.png", (samples / "coffee.png").read_bytes())}
    ).json()
    assert "coffee.png" not in [r["path"] for r in same], "the very photo is left out"
    bad = client.post("/api/similar", files={"file": ("notes.txt", b"not a photo", "text/plain")})
    assert bad.status_code == 415


def test_photo_original_thumbnail_and_info(client: TestClient, library: tuple[Path, Path, Path]) -> None:
    cat = photo_id(client, "cat.png")
    original = client.get(f"/api/photos/{cat}")
    assert original.status_code == 200
    assert original.content == (library[0] / "cat.png").read_bytes()
    thumb = client.get(f"/api/photos/{cat}/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    assert client.get(f"/api/photos/{cat}/thumbnail").content == thumb.content  # cached
    info = client.get(f"/api/photos/{cat}/info").json()
    assert info["path"] == "cat.png" and info["width"] == 451 and info["detections"] == []


def test_unknown_ids_are_404(client: TestClient) -> None:
    for url in [
        "/api/photos/999999",
        "/api/photos/999999/thumbnail",
        "/api/similar/999999",
        "/api/photos/abc",
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/photos/../../secret.jpg",
        "/api/photos/..%2F..%2Fsecret.jpg",
        "/api/photos/%2e%2e%2f%2e%2e%2fsecret.jpg",
        "/api/photos/..%252F..%252Fsecret.jpg",
        "/api/photos/%252e%252e%252fsecret.jpg",
        "/api/photos//etc/passwd",
        "/api/photos/%2Fetc%2Fpasswd",
        "/api/photos/1%2F..%2F..%2Fsecret.jpg/thumbnail",
        "/static/../../secret.jpg",
        "/static/..%2F..%2Fweb%2Fapp.py",
        "/static/%2e%2e/app.py",
    ],
)
def test_traversal_attempts_get_404_and_no_bytes(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404, (url, response.status_code)
    assert SECRET not in response.content and b"root:" not in response.content
    assert b"import" not in response.content


def test_a_symlink_out_of_the_library_is_never_served(
    client: TestClient, library: tuple[Path, Path, Path]
) -> None:
    escape = photo_id(client, "escape.jpg")  # indexed with --follow-links, so it has an id
    for suffix in ("", "/thumbnail", "/info"):
        response = client.get(f"/api/photos/{escape}{suffix}")
        assert response.status_code == 404, suffix
        assert SECRET not in response.content


def test_search_without_an_index_is_503_with_the_fix() -> None:
    response = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(db=None))).get(
        "/api/search", params={"q": "cat"}
    )
    assert response.status_code == 503
    assert "pixelsift serve --db" in response.json()["error"]


def test_bad_search_parameters_are_400(client: TestClient) -> None:
    assert client.get("/api/search").status_code == 400
    assert client.get("/api/search", params={"q": "cat", "n": 0}).status_code == 400
    assert client.get("/api/search", params={"q": "   "}).status_code == 400


def test_search_results_never_list_a_photo_outside_the_library(client: TestClient) -> None:
    escape = photo_id(client, "escape.jpg")
    for query in ("cat", "coffee", "espresso"):
        assert escape not in [r["id"] for r in client.get("/api/search", params={"q": query, "n": 50}).json()]
    cat = photo_id(client, "cat.png")
    assert escape not in [r["id"] for r in client.get(f"/api/similar/{cat}", params={"n": 50}).json()]


@pytest.mark.parametrize("photo_id", ["²", "١٢", "1e3", "-1", " 1"])
def test_ids_that_are_not_plain_ascii_numbers_are_404(client: TestClient, photo_id: str) -> None:
    for path in ("/api/photos/{}", "/api/photos/{}/thumbnail", "/api/photos/{}/info", "/api/similar/{}"):
        response = client.get(path.format(quote(photo_id)))
        assert response.status_code == 404, (photo_id, path, response.text)


def test_search_takes_the_cli_filters(client: TestClient) -> None:
    def paths(**params: object) -> list[str]:
        response = client.get("/api/search", params={"q": "cat", **params})
        assert response.status_code == 200, response.text
        return [r["path"] for r in response.json()]

    assert paths()[0] == "cat.png"
    assert paths(before="2999") == paths() and paths(after="2999") == []  # file times, no EXIF date
    assert paths(camera="Nikon") == [], "no photo here has EXIF camera data"
    best = client.get("/api/search", params={"q": "cat"}).json()[0]["score"]
    assert paths(min_score=best - 0.01)[0] == "cat.png" and paths(min_score=min(1.0, best + 0.01)) == []
    bad = client.get("/api/search", params={"q": "cat", "after": "last tuesday"})
    assert bad.status_code == 400 and "last tuesday" in bad.json()["error"]


def test_library_stats_say_how_many_photos_no_detector_has_seen(client: TestClient) -> None:
    stats = client.get("/api/library").json()
    assert stats["detector"] == "none" and stats["model"] == "efficientnet_lite0"
    assert stats["photos"] == stats["without_detection"] >= 3
    assert "root" not in stats and "db" not in stats, "the page is told counts, never server paths"
    search = client.get("/api/search", params={"q": "person"})
    assert "not been seen by an object detector" in search.headers["x-pixelsift-note"]
