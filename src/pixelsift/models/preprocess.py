"""Preprocessing as data: the resize / crop / normalisation a model's weights were trained with.

A `Preprocessing` record is built from the weights' own metadata (torchvision's `weights.transforms()`,
timm's data config), never written by hand at a call site, and applied the same way everywhere.
Two ways to apply it:

- `preprocessing(img)` reproduces torchvision's PIL path exactly (shorter side resized with Pillow,
  antialiased; centre crop with torchvision's rounding; per-channel normalisation) as float32 CHW: the
  reference, and what gradient-based explanations and training augmentation feed a network.
- `preprocessing.pixels(img)` is the fast path every runner takes: the same crop resized in one step
  (Pillow resizes only the region the crop keeps) and kept as uint8 CHW, 4x less memory to move
  through the decode queue; the runner scales and normalises as the model's first operation
  (`normalise_batch`, or its torch / ONNX equivalent). Its pixels are within one level of 255 of the
  reference's, and on real photos the model's top-1 is the same (tests/unit/test_preprocess.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from pixelsift.imaging.resize import squash_bilinear

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Longer side over shorter side beyond which only the cropped region is resized (photos, panoramas
# included, stay well below it and are resized exactly as torchvision does).
MAX_ASPECT = 8


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to `resize`, centre-crop `crop` x `crop`, scale to [0, 1], normalise.

    >>> p = Preprocessing(resize=256, crop=224)
    >>> p(Image.new("RGB", (640, 480))).shape
    (3, 224, 224)
    """

    resize: int
    crop: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    # "crop": shorter side to `resize`, centre crop (classifiers); "squash": the whole image to
    # `crop` x `crop`, aspect not kept, with OpenCV's bilinear arithmetic (the TF detection-zoo SSD)
    fit: Literal["crop", "squash"] = "crop"

    def __post_init__(self) -> None:
        if self.fit not in ("crop", "squash"):
            raise ValueError(f"fit must be 'crop' or 'squash', not {self.fit!r}")
        if self.interpolation not in _RESAMPLE:
            raise ValueError(f"interpolation must be one of {sorted(_RESAMPLE)}, not {self.interpolation!r}")
        if not 0 < self.crop <= self.resize:
            raise ValueError(f"need 0 < crop <= resize, got crop={self.crop}, resize={self.resize}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.crop, self.crop)

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of an image of this size once its shorter side is resized to `resize`."""
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.resize, int(self.resize * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The centre crop (x1, y1, x2, y2) in the pixels of an image of this size (before resizing)."""
        new_w, new_h = self.resized_size(width, height)
        top = round((new_h - self.crop) / 2.0)
        left = round((new_w - self.crop) / 2.0)
        sx, sy = width / new_w, height / new_h
        return left * sx, top * sy, (left + self.crop) * sx, (top + self.crop) * sy

    def resize_and_crop(self, img: Image.Image) -> Image.Image:
        if self.fit == "squash":
            return Image.fromarray(self.pixels(img).transpose(1, 2, 0))
        width, height = img.size
        size = self.resized_size(width, height)
        if max(size) > MAX_ASPECT * min(size):
            # A very thin image (a 8000 x 1 PNG) would resize to gigabytes (2,048,000 x 256): resize only
            # the region the crop keeps. Same pixels within a level or two; never used on photos.
            box = self.crop_box(width, height)
            return img.resize((self.crop, self.crop), _RESAMPLE[self.interpolation], box=box)
        if size != img.size:
            img = img.resize(size, _RESAMPLE[self.interpolation])
        top = round((size[1] - self.crop) / 2.0)
        left = round((size[0] - self.crop) / 2.0)
        return img.crop((left, top, left + self.crop, top + self.crop))

    def pixels(self, img: Image.Image) -> np.ndarray:
        """RGB image -> uint8 array (3, crop, crop): the centre crop resized in one step (no float), or
        with `fit="squash"` the whole image squashed to the square."""
        if self.fit == "squash":
            return squash_bilinear(np.asarray(img, dtype=np.uint8), self.crop)
        width, height = img.size
        if (width, height) == (self.crop, self.crop):
            crop = img
        else:
            crop = img.resize(
                (self.crop, self.crop), _RESAMPLE[self.interpolation], box=self.crop_box(width, height)
            )
        return np.ascontiguousarray(np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1))

    def scale_and_offset(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (scale, offset) with normalised = uint8 * scale - offset, shape (3,) float32."""
        scale = np.asarray([1.0 / (255.0 * s) for s in self.std], dtype=np.float32)
        offset = np.asarray([m / s for m, s in zip(self.mean, self.std, strict=True)], dtype=np.float32)
        return scale, offset

    def normalise_batch(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) uint8 from `pixels` -> the float32 batch the network takes (what a runner does
        as its first operation)."""
        scale, offset = self.scale_and_offset()
        out = pixels.astype(np.float32)
        out *= scale[:, None, None]
        out -= offset[:, None, None]
        return out

    def to_pixels(self, batch: np.ndarray) -> np.ndarray:
        """The inverse of `normalise_batch`: a float batch normalised like `__call__` back to uint8
        levels (rounded), for engines whose graph takes uint8 (ONNX Runtime, OpenVINO)."""
        scale, offset = self.scale_and_offset()
        levels = (batch + offset[:, None, None]) / scale[:, None, None]
        return np.clip(np.rint(levels), 0, 255).astype(np.uint8)

    def normalise(self, img: Image.Image) -> np.ndarray:
        """RGB image -> float32 array (3, H, W), (x / 255 - mean) / std."""
        arr = np.asarray(img, dtype=np.float32)
        scale, offset = self.scale_and_offset()
        arr = arr * scale - offset
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def __call__(self, img: Image.Image) -> np.ndarray:
        return self.normalise(self.resize_and_crop(img))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            resize=int(data["resize"]),
            crop=int(data["crop"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            interpolation=str(data.get("interpolation", "bilinear")),
            fit="squash" if data.get("fit") == "squash" else "crop",
        )

    @classmethod
    def from_torchvision(cls, transforms: Any) -> Preprocessing:
        """From a torchvision `ImageClassification` preset (what `weights.transforms()` returns)."""
        return cls(
            resize=int(transforms.resize_size[0]),
            crop=int(transforms.crop_size[0]),
            mean=tuple(transforms.mean),
            std=tuple(transforms.std),
            interpolation=str(transforms.interpolation.value),
        )

    @classmethod
    def from_timm(cls, config: dict[str, Any]) -> Preprocessing:
        """From timm's `resolve_model_data_config` dict (input_size, crop_pct, mean, std, interpolation)."""
        crop = int(config["input_size"][-1])
        crop_pct = float(config.get("crop_pct") or 1.0)
        return cls(
            resize=int(crop / crop_pct),
            crop=crop,
            mean=tuple(config["mean"]),
            std=tuple(config["std"]),
            interpolation=str(config.get("interpolation") or "bilinear"),
        )
