"""What a photo file says about itself: content hash, pixel size, EXIF date, camera and GPS position.

Reads headers only (Pillow's `Image.open` does not decode pixels); the pixels themselves are decoded by
`pixelsift.images.open_image`. Bad or missing EXIF is never an error: the field is simply None.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image

_TAG_MAKE, _TAG_MODEL, _TAG_DATETIME, _TAG_ORIENTATION = 271, 272, 306, 274
_TAG_DATETIME_ORIGINAL, _TAG_DATETIME_DIGITIZED = 36867, 36868
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4


@dataclass(frozen=True)
class PhotoMetadata:
    width: int | None = None  # as displayed (EXIF orientation applied), full resolution
    height: int | None = None
    taken_at: str | None = None  # ISO 8601 local time, from EXIF DateTimeOriginal
    camera: str | None = None  # "Make Model", e.g. "Canon EOS 5D Mark II"
    latitude: float | None = None
    longitude: float | None = None


def read_exif(data: bytes) -> PhotoMetadata:
    """Size, date, camera and position from an encoded image's headers; None for what is absent.

    >>> read_metadata(open("samples/chelsea.png", "rb").read()).width
    451
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            exif = img.getexif()
            orientation = exif.get(_TAG_ORIENTATION)
            if orientation in (5, 6, 7, 8):  # rotated by 90 degrees when displayed
                width, height = height, width
            return PhotoMetadata(
                width=width,
                height=height,
                taken_at=_taken_at(exif),
                camera=_camera(exif),
                **_gps(exif),
            )
    except Exception:  # a header Pillow cannot parse: the pixel decoder reports the real problem
        return PhotoMetadata()


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _camera(exif: Image.Exif) -> str | None:
    make, model = _text(exif.get(_TAG_MAKE)), _text(exif.get(_TAG_MODEL))
    if make and model and model.lower().startswith(make.split()[0].lower()):
        return model  # "Canon" + "Canon EOS 5D" -> "Canon EOS 5D"
    return " ".join(part for part in (make, model) if part) or None


def _parse_exif_date(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y:%m:%d"):
        try:
            return datetime.strptime(text[:19], fmt).isoformat()
        except ValueError:
            continue
    return None  # "0000:00:00 00:00:00" and other placeholders


def _taken_at(exif: Image.Exif) -> str | None:
    try:
        details = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        details = {}
    for value in (details.get(_TAG_DATETIME_ORIGINAL), details.get(_TAG_DATETIME_DIGITIZED)):
        parsed = _parse_exif_date(value)
        if parsed:
            return parsed
    return _parse_exif_date(exif.get(_TAG_DATETIME))


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60.0 + s / 3600.0
    return -degrees if _text(ref) in ("S", "W") else degrees


def _gps(exif: Image.Exif) -> dict[str, float | None]:
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        gps = {}
    lat = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF)) if gps else None
    lon = _degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF)) if gps else None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == lon == 0):
        return {"latitude": None, "longitude": None}
    return {"latitude": round(lat, 7), "longitude": round(lon, 7)}
