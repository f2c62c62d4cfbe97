"""Reading the text in photos: the real PP-OCR networks from rapidocr's wheel, on made photos."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, run_cli, text_photo
from pixelsift.errors import MissingDependencyError
from pixelsift.ocr import TextReader, read_text

pytest.importorskip("rapidocr", reason="the ocr extra")

LINES = ["RE16 TGK", "Happy Birthday"]


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader()


def texts(lines: list) -> list[str]:
    return [line.text for line in lines]


@pytest.mark.parametrize(
    "turn",
    [
        pytest.param({}, id="upright"),
        pytest.param({"angle": 90}, id="at-90-degrees"),
        pytest.param({"angle": 180}, id="upside-down"),
        pytest.param({"angle": 270, "blur": 1.5}, id="at-270-and-blurred"),
        pytest.param({"angle": 8, "background": REPO / "samples" / "rocket.jpg"}, id="slanted-on-a-photo"),
    ],
)
def test_reads_the_text_of_made_photos_at_any_angle(reader: TextReader, turn: dict) -> None:
    read = reader.read_image(text_photo(LINES, **turn))
    assert sorted(texts(read)) == sorted(LINES)
    assert all(line.score >= 0.8 for line in read)
    assert [w.text for w in next(line for line in read if line.text == "RE16 TGK").words] == ["RE16", "TGK"]


def test_boxes_cover_the_text_in_the_photos_own_pixels(reader: TextReader, tmp_path: Path) -> None:
    big = text_photo(["GROCERY MART"], size=(3000, 2000), font_size=150)
    big.save(tmp_path / "sign.jpg", quality=92)
    reading = reader.read_file(tmp_path / "sign.jpg")  # decoded at reduced size, reported at full size
    assert (reading.width, reading.height) == (3000, 2000)
    (line,) = reading.lines
    x1, y1, x2, y2 = line.box
    # text_photo writes the line from x = 330 at the sign's middle height (y around 1000)
    assert 250 < x1 < 400 and 850 < y1 < 1000 and 1000 < y2 < 1150 and x2 > 1400
    assert 100 < line.height < 220


def test_text_is_read_upright_through_exif_orientation(reader: TextReader, tmp_path: Path) -> None:
    upright = text_photo(["Main Street"], size=(900, 600))
    stored = upright.rotate(90, expand=True)  # what the camera stored; EXIF 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation: rotate 90 CW to view (undoes the 90 CCW turn above)
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    reading = reader.read_file(tmp_path / "turned.jpg")
    assert texts(reading.lines) == ["Main Street"]
    assert (reading.width, reading.height) == (900, 600)  # the upright size: boxes are in it
    x1, _, x2, _ = reading.lines[0].box
    assert x2 - x1 > 300  # a horizontal line in the upright photo


@pytest.mark.parametrize("size", [(900, 600), (2000, 1500), (800, 1300)])
def test_the_detectors_fast_input_is_rapidocrs_own(reader: TextReader, size: tuple[int, int]) -> None:
    """The reader normalises the text detector's input with OpenCV instead of rapidocr's float64 numpy:
    the network gets the same values, so the same lines are found."""
    from pixelsift.ocr.reader import _bgr, _DetectorInput

    detector = reader._engine.text_det
    fast = detector.get_preprocess()
    assert isinstance(fast, _DetectorInput)
    bgr = _bgr(text_photo(LINES, size=size))
    own = fast.default(bgr)
    ours = fast(bgr)
    assert ours.dtype == own.dtype == np.float32 and ours.shape == own.shape
    assert np.abs(ours - own).max() < 1e-5
    with pytest.MonkeyPatch.context() as patch:  # rapidocr's own preprocessing, for one reading
        patch.setattr(detector, "get_preprocess", lambda: fast.default)
        theirs = texts(reader.read_pixels(bgr))
    assert texts(reader.read_pixels(bgr)) == theirs == LINES


def test_photos_without_text_give_no_lines(reader: TextReader) -> None:
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"):
        assert reader.read_file(REPO / "samples" / name).lines == [], name


def test_min_score_and_min_chars_drop_weak_and_stray_readings(reader: TextReader) -> None:
    photo = text_photo(["Zx", "Open 24h"])
    assert "Zx" in texts(reader.read_image(photo))
    strict = TextReader(min_chars=3)
    assert texts(strict.read_image(photo)) == ["Open 24h"]
    nothing = TextReader(min_score=1.0).read_image(text_photo(["Open 24h"], blur=2.5))
    assert nothing == []


def test_read_text_keeps_going_past_a_bad_file_and_gives_a_frame(tmp_path: Path) -> None:
    text_photo(["Happy Birthday"]).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"not a photo")
    text_photo(["RE16 TGK"]).save(tmp_path / "c.png")
    readings = read_text(tmp_path)
    assert [Path(r.path or "").name for r in readings] == ["a.png", "b.jpg", "c.png"]
    assert readings[1].error and "not an image" in readings[1].error
    frame = readings.to_pandas()
    assert list(frame["text"].dropna()) == ["Happy Birthday", "RE16 TGK"]
    assert frame.loc[frame["path"].str.endswith("b.jpg"), "error"].item() == readings[1].error
    assert frame.loc[0, "words"] == ["Happy", "Birthday"]


def test_cli_prints_one_json_object_per_input_and_exits_1_on_a_bad_file(tmp_path: Path) -> None:
    text_photo(["Happy Birthday"]).save(tmp_path / "card.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    result = run_cli("ocr", str(tmp_path / "card.png"), str(tmp_path / "broken.jpg"), "--format", "json")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert [Path(o["path"]).name for o in out] == ["card.png", "broken.jpg"]
    assert out[0]["text"] == "Happy Birthday" and out[0]["lines"][0]["words"][1]["text"] == "Birthday"
    assert "error" in out[1]
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr

    table = run_cli("ocr", str(tmp_path / "card.png"))
    assert table.returncode == 0 and "Happy Birthday" in table.stdout
    on_ort = run_cli("ocr", str(tmp_path / "card.png"), "--engine", "onnxruntime", "-f", "jsonl")
    assert on_ort.returncode == 0 and '"text": "Happy Birthday"' in on_ort.stdout
    csv = run_cli("ocr", str(tmp_path / "card.png"), "-f", "csv")
    header, row = csv.stdout.splitlines()[:2]
    assert header.startswith("path,line,text,score,x1") and ",Happy Birthday," in row


def test_cli_rejects_a_bad_option_with_exit_2(tmp_path: Path) -> None:
    result = run_cli("ocr", str(REPO / "samples"), "--min-score", "1.5")
    assert result.returncode == 2 and "between 0 and 1" in result.stderr


def test_a_missing_ocr_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import rapidocr: ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'pixelsift\[ocr\]'"):
        TextReader()


def test_cli_says_which_extra_to_install_when_rapidocr_is_missing(tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "rapidocr.py").write_text("raise ImportError('blocked for the test')\n")
    result = run_cli("ocr", str(REPO / "samples" / "chelsea.png"), env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 1
    assert "pip install 'pixelsift[ocr]'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_save_writes_a_copy_with_the_lines_outlined_and_leaves_the_photo_alone(tmp_path: Path) -> None:
    photo = tmp_path / "card.png"
    text_photo(["Happy Birthday"]).save(photo)
    before = photo.read_bytes()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "card.png").write_bytes(b"someone else's file")  # never overwritten
    result = run_cli("ocr", str(photo), "--save", str(tmp_path / "out"), "-f", "json")
    assert result.returncode == 0, result.stderr
    assert "1 photos with their text outlined saved" in result.stderr
    assert (
        photo.read_bytes() == before
        and (tmp_path / "out" / "card.png").read_bytes() == b"someone else's file"
    )
    drawn = np.asarray(Image.open(tmp_path / "out" / "card-1.png").convert("RGB"), dtype=np.int16)
    x1, y1, _, y2 = (round(v) for v in json.loads(result.stdout)[0]["lines"][0]["box"])
    edge = drawn[(y1 + y2) // 2, max(0, x1 - 6) : x1 + 6]
    assert (np.abs(edge - (255, 196, 0)).sum(axis=1) < 60).any()  # the amber outline, losslessly saved
    bad = run_cli("ocr", str(photo), "--save", str(photo))  # a file, not a folder
    assert bad.returncode == 2 and "--save" in bad.stderr and "Traceback" not in bad.stderr


def test_a_bad_environment_value_is_one_line_with_exit_2() -> None:
    for name, value in (("PIXELSIFT_THREADS", "abc"), ("PIXELSIFT_DEVICE", "tpu"), ("PIXELSIFT_ENGINE", "x")):
        result = run_cli("ocr", str(REPO / "samples" / "chelsea.png"), env={name: value})
        assert result.returncode == 2, (name, result.stderr)
        assert name in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
