"""Uploaded photos in, JPEGs out: the web app's image handling, with its limits."""

from __future__ import annotations

import io
from typing import Any

from fastapi import UploadFile

from pixelsift.errors import ApiError, ImageError, PixelLimitError
from pixelsift.imaging.images import open_image
from pixelsift.web.config import WebConfig


def read_upload_data(file: UploadFile, config: WebConfig) -> bytes:
    """The uploaded file's bytes, or an ApiError 413 when it is over the upload limit."""
    data = file.file.read(config.max_upload_bytes + 1)
    if len(data) > config.max_upload_bytes:
        raise ApiError(413, f"upload is over the limit of {config.max_upload_bytes / 1024 / 1024:.0f} MB")
    return data


def decode_upload(data: bytes, config: WebConfig, name: str, min_size: int | None = None) -> Any:
    """Uploaded bytes as an RGB image, or an ApiError (415 not an image, 413 too many pixels).
    `min_size`: decode as the CLI does for a network of that input size (JPEG draft scaling), so an
    upload gets the same scores as `pixelsift classify` on the same file."""
    try:
        return open_image(data, min_size=min_size, max_pixels=config.max_pixels, name=name)
    except PixelLimitError as exc:
        raise ApiError(413, f"image too large: {exc.reason}") from None
    except ImageError as exc:
        raise ApiError(415, f"not a usable image: {exc.reason}") from None


def read_upload(file: UploadFile, config: WebConfig, name: str | None = None) -> Any:
    """The uploaded image as RGB, at full resolution, or an ApiError (413, 415)."""
    return decode_upload(read_upload_data(file, config), config, name or file.filename or "upload")


def jpeg_bytes(image: Any, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
