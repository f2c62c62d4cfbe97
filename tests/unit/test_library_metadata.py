"""What the index reads from a photo's headers: displayed size, EXIF date, camera, GPS position."""

from __future__ import annotations

import io

from PIL import Image

from pixelsift.core.hashing import sha256_bytes
from pixelsift.library.metadata import read_exif as read_metadata


def jpeg_with_exif(size: tuple[int, int] = (40, 30), **tags: object) -> bytes:
    exif = Image.Exif()
    if "make" in tags:
        exif[271] = tags["make"]
    if "model" in tags:
        exif[272] = tags["model"]
    if "orientation" in tags:
        exif[274] = tags["orientation"]
    if "taken" in tags:
        exif.get_ifd(0x8769)[36867] = tags["taken"]
    if "gps" in tags:
        lat_ref, lat, lon_ref, lon = tags["gps"]  # type: ignore[misc]
        gps = exif.get_ifd(0x8825)
        gps.update({1: lat_ref, 2: lat, 3: lon_ref, 4: lon})
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 150)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_date_camera_and_position() -> None:
    data = jpeg_with_exif(
        make="Canon",
        model="Canon EOS 5D Mark II",
        taken="2021:07:04 12:30:05",
        gps=("S", (33.0, 51.0, 36.0), "E", (151.0, 12.0, 36.0)),
    )
    meta = read_metadata(data)
    assert meta.taken_at == "2021-07-04T12:30:05"
    assert meta.camera == "Canon EOS 5D Mark II", "the make is not repeated"
    assert meta.latitude == -33.86 and meta.longitude == 151.21
    assert (meta.width, meta.height) == (40, 30)


def test_rotated_photos_report_their_displayed_size() -> None:
    assert read_metadata(jpeg_with_exif((40, 30), orientation=6)).width == 30
    meta = read_metadata(jpeg_with_exif((40, 30), orientation=8))
    assert (meta.width, meta.height) == (30, 40)


def test_missing_or_broken_exif_is_none_never_an_error() -> None:
    meta = read_metadata(jpeg_with_exif(make="NIKON CORPORATION", model="D750", taken="0000:00:00 00:00:00"))
    assert meta.taken_at is None and meta.camera == "NIKON CORPORATION D750"
    empty = read_metadata(jpeg_with_exif())
    assert (empty.taken_at, empty.camera, empty.latitude, empty.longitude) == (None, None, None, None)
    assert read_metadata(b"not an image").width is None
    assert read_metadata(jpeg_with_exif(gps=("N", (0.0, 0.0, 0.0), "E", (0.0, 0.0, 0.0)))).latitude is None


def test_content_hash_is_sha256() -> None:
    assert sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
