"""Uploaded photos in, JPEGs out: the web app's image handling, with its limits."""

from __future__ import annotations

import io
from typing import Any

from fastapi import UploadFile

from pixelsift.errors import ApiError, ImageError, PixelLimitError
from pixelsift.imaging.images import open_image
from pixelsift.web.config import WebConfig


def read_upload(file: UploadFile, config: WebConfig, name: str | None = None) -> Any:
    """The uploaded image as RGB, or an ApiError (415 not an image, 413 too many pixels)."""
    data = file.file.read(config.max_upload_bytes + 1)
    if len(data) > config.max_upload_bytes:
        raise ApiError(413, f"upload is over the limit of {config.max_upload_bytes / 1024 / 1024:.0f} MB")
    try:
        return open_image(data, max_pixels=config.max_pixels, name=name or file.filename or "upload")
    except PixelLimitError as exc:
        raise ApiError(413, f"image too large: {exc.reason}") from None
    except ImageError as exc:
        raise ApiError(415, f"not a usable image: {exc.reason}") from None


def jpeg_bytes(image: Any, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
