"""REST API: /api/ocr answers like `pixelsift ocr --format json` and draws the lines on request;
/api/search?text=1 searches the text read in a library's photos, like `search --text`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from helpers import text_photo
from pixelsift.library import PhotoIndex
from pixelsift.web import WebConfig, create_app

pytest.importorskip("rapidocr", reason="the ocr extra")


def upload(img: Image.Image, name: str = "card.png") -> dict[str, tuple[str, bytes, str]]:
    data = io.BytesIO()
    img.save(data, format="PNG")
    return {"file": (name, data.getvalue(), "image/png")}


def test_ocr_answers_with_the_lines_and_draws_them() -> None:
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig()))
    photo = text_photo(["Happy Birthday", "Anna"])
    body = client.post("/api/ocr", files=upload(photo)).json()
    assert body["path"] == "card.png" and (body["width"], body["height"]) == (900, 600)
    assert [line["text"] for line in body["lines"]] == ["Happy Birthday", "Anna"]
    assert body["text"] == "Happy Birthday\nAnna"
    assert [w["text"] for w in body["lines"][0]["words"]] == ["Happy", "Birthday"]

    drawn = client.post("/api/ocr?annotated=1", files=upload(photo))
    assert drawn.headers["content-type"] == "image/jpeg"
    picture = np.asarray(Image.open(io.BytesIO(drawn.content)).convert("RGB"), dtype=np.int16)
    x1, y1, _, y2 = (round(v) for v in body["lines"][0]["box"])
    edge = picture[(y1 + y2) // 2, max(0, x1 - 6) : x1 + 6]  # the outline's left side crosses here
    assert (np.abs(edge - (255, 196, 0)).sum(axis=1) < 150).any()  # its amber, through JPEG's blur
    plain = np.asarray(photo, dtype=np.int16)[(y1 + y2) // 2, max(0, x1 - 6) : x1 + 6]
    assert not (np.abs(plain - (255, 196, 0)).sum(axis=1) < 150).any()  # not there before drawing

    not_a_photo = client.post("/api/ocr", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert not_a_photo.status_code == 415


def test_search_text_finds_the_photo_that_shows_the_words(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    text_photo(["RE16 TGK"]).save(root / "plate.png")
    text_photo(["Open 24h"]).save(root / "shop.png")
    PhotoIndex(tmp_path / "i.db").update(root, detector="none", ocr=True)
    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig(db=tmp_path / "i.db")))
    (found,) = client.get("/api/search", params={"q": "re16", "text": 1}).json()
    assert found["path"] == "plate.png" and found["matched"][0]["label"] == "RE16 TGK"
    nothing = client.get("/api/search", params={"q": "zebra", "text": 1})
    assert nothing.json() == [] and "no photo shows the text" in nothing.headers["X-Pixelsift-Message"]
