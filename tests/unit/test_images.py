from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import as_unprivileged_user, make_bad_inputs, shared_tmp_dir, write_image
from pixelsift.errors import ImageError
from pixelsift.imaging.images import expand_inputs, open_image, walk_images


def test_rgba_transparency_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red
    img.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    img.save(tmp_path / "a.png")
    out = open_image(tmp_path / "a.png")
    assert out.mode == "RGB"
    assert out.getpixel((5, 5)) == (255, 255, 255)
    assert out.getpixel((0, 0)) == (0, 0, 255)


def test_palette_with_transparency_and_la_become_rgb_on_white(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    pal.info["transparency"] = 0
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png", transparency=0)
    out = open_image(tmp_path / "p.png")
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 1)) == (10, 200, 10)
    Image.new("LA", (3, 3), (0, 0)).save(tmp_path / "la.png")
    assert open_image(tmp_path / "la.png").getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["L", "1", "CMYK", "I;16", "I", "F"])
def test_every_mode_converts_to_8bit_rgb(tmp_path: Path, mode: str) -> None:
    if mode in ("I;16", "I"):
        arr = np.full(
            (8, 8), 65535 if mode == "I;16" else 40000, dtype=np.uint16 if mode == "I;16" else np.int32
        )
        img = Image.fromarray(arr)
        assert img.mode == mode
    elif mode == "F":
        img = Image.fromarray(np.full((8, 8), 0.5, np.float32))
    else:
        img = Image.new("RGB", (8, 8), (250, 250, 250)).convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16", "I", "F") else "x.png")
    img.save(path)
    out = open_image(path)
    assert out.mode == "RGB" and out.size == (8, 8)
    r, g, b = out.getpixel((3, 3))
    assert r == g == b and r > 100, "a bright uniform image must stay bright (not clipped to black)"


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (60, 20), (0, 0, 0))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red stripe on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = open_image(tmp_path / "rot.jpg")
    assert out.size == (20, 60)
    r, g, _ = out.getpixel((10, 3))  # after rotating CW, the left stripe is at the top
    assert r > 200 and g < 60


def test_large_jpeg_is_draft_decoded_to_what_the_model_needs(tmp_path: Path) -> None:
    path = write_image(tmp_path / "big.jpg", size=(2400, 1800))
    full = open_image(path)
    draft = open_image(path, min_size=256)
    assert full.size == (2400, 1800)
    assert min(draft.size) >= 256, "draft must never go below the size the model needs"
    assert draft.size[0] < 2400 / 2, "draft mode should have used DCT scaling"
    small = write_image(tmp_path / "small.jpg", size=(300, 300))
    assert open_image(small, min_size=256).size == (300, 300)  # no draft when it would go under 2x


def test_bytes_and_file_objects_open(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    assert open_image(path.read_bytes()).size == (64, 48)
    assert open_image(io.BytesIO(path.read_bytes())).size == (64, 48)


def test_each_bad_input_raises_image_error_with_a_reason(tmp_path: Path) -> None:
    bad = make_bad_inputs(tmp_path)
    expected = {
        "empty": "empty file",
        "truncated": "truncated",
        "not_image": "not an image",
        "bomb": "decompression-bomb",
    }
    for kind, phrase in expected.items():
        with pytest.raises(ImageError) as info:
            open_image(bad[kind])
        assert phrase in info.value.reason, (kind, info.value.reason)
        assert info.value.path == str(bad[kind])
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        open_image(tmp_path)


def test_permission_denied_is_reported() -> None:
    with shared_tmp_dir() as folder:
        bad = make_bad_inputs(folder)
        with as_unprivileged_user(), pytest.raises(ImageError, match="permission denied"):
            open_image(bad["denied"])


def test_pixel_limit_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "a.png", size=(100, 100))
    monkeypatch.setenv("PIXELSIFT_MAX_PIXELS", "5000")
    with pytest.raises(ImageError, match="over the limit of 5000"):
        open_image(path)


def test_walk_is_recursive_sorted_and_skips_hidden_and_non_images(tmp_path: Path) -> None:
    write_image(tmp_path / "b.jpg")
    write_image(tmp_path / "a" / "z.png")
    write_image(tmp_path / ".hidden" / "x.jpg")
    write_image(tmp_path / ".dotfile.jpg")
    (tmp_path / "notes.txt").write_text("x")
    write_image(tmp_path / "a" / "skip_me.jpg")
    found = [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path)]
    assert found == ["a/skip_me.jpg", "a/z.png", "b.jpg"]
    found = [p.name for p in walk_images(tmp_path, exclude=["skip_*"])]
    assert found == ["z.png", "b.jpg"]


def test_expand_inputs_files_folders_globs_stdin_and_missing(tmp_path: Path) -> None:
    a = write_image(tmp_path / "d" / "a.jpg")
    b = write_image(tmp_path / "d" / "b.png")
    c = write_image(tmp_path / "c.jpg")
    odd = tmp_path / "explicit.dat"
    odd.write_bytes(b"x")
    out = list(
        expand_inputs(
            [str(tmp_path / "d"), str(tmp_path / "*.jpg"), "-", str(odd), str(tmp_path / "nope.jpg")],
            stdin=[f"{c}\n", "\n", f"{a}\n"],
        )
    )
    paths = [o for o in out if isinstance(o, Path)]
    errors = [o for o in out if isinstance(o, ImageError)]
    assert paths == [a, b, c, c, a, odd]
    assert [e.reason for e in errors] == ["no such file or folder"]
    assert [e.reason for e in expand_inputs([str(tmp_path / "*.gif")])] == ["no files match this pattern"]
