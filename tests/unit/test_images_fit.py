"""Draft decoding for letterboxing detectors (`open_image(fit=...)`) and the photo's own size it keeps."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from helpers import write_image
from pixelsift.imaging.images import open_image


def test_fit_keeps_the_longer_side_and_remembers_the_full_size(tmp_path: Path) -> None:
    path = write_image(tmp_path / "wide.jpg", size=(3200, 1200))
    img = open_image(path, fit=640)
    assert img.size == (800, 300), "1/4 scale: the longer side stays >= 640, the shorter may go below it"
    assert img.info["full_size"] == (3200, 1200)
    assert open_image(path, min_size=500).size == (1600, 600), "min_size keeps the shorter side instead"
    assert open_image(path).size == (3200, 1200)


def test_small_or_non_jpeg_photos_are_decoded_whole(tmp_path: Path) -> None:
    jpeg = write_image(tmp_path / "small.jpg", size=(1000, 700))
    assert open_image(jpeg, fit=640).size == (1000, 700)
    png = write_image(tmp_path / "big.png", size=(2600, 1400))
    assert open_image(png, fit=640).size == (2600, 1400)


def test_full_size_follows_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.new("RGB", (3000, 1500), (90, 20, 200)).save(path, exif=exif.tobytes())
    img = open_image(path, fit=500)
    assert img.size == (375, 750)
    assert img.info["full_size"] == (1500, 3000)
