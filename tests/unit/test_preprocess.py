from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixelsift.models.preprocess import Preprocessing


@pytest.mark.parametrize(
    "weights_name",
    [
        "ResNet50_Weights.IMAGENET1K_V2",
        "EfficientNet_B0_Weights.IMAGENET1K_V1",
        "Inception_V3_Weights.IMAGENET1K_V1",
    ],
)
@pytest.mark.parametrize("size", [(640, 480), (300, 701), (224, 224)])
def test_matches_torchvision_weights_transforms_exactly(weights_name: str, size: tuple[int, int]) -> None:
    """The preprocessing record reproduces torchvision's own transforms (no hand-made 299 px bugs)."""
    import torchvision

    weights = torchvision.models.get_weight(weights_name)
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    ours = Preprocessing.from_torchvision(weights.transforms())(img)
    theirs = weights.transforms()(img).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_from_timm_config_uses_crop_pct() -> None:
    p = Preprocessing.from_timm(
        {
            "input_size": (3, 288, 288),
            "crop_pct": 0.95,
            "mean": (0.5,) * 3,
            "std": (0.5,) * 3,
            "interpolation": "bicubic",
        }
    )
    assert (p.resize, p.crop, p.interpolation) == (303, 288, "bicubic")


def test_normalisation_and_round_trip() -> None:
    p = Preprocessing(resize=8, crop=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = p(Image.new("RGB", (8, 8), (255, 0, 127)))
    assert out.dtype == np.float32 and out.shape == (3, 8, 8)
    np.testing.assert_allclose(out[:, 0, 0], [1.0, -1.0, 127 / 127.5 - 1], atol=1e-6)
    assert Preprocessing.from_dict(p.to_dict()) == p
    assert torch.from_numpy(out).is_contiguous()


def test_invalid_records_are_rejected() -> None:
    with pytest.raises(ValueError):
        Preprocessing(resize=200, crop=224)
    with pytest.raises(ValueError):
        Preprocessing(resize=256, crop=224, interpolation="magic")


def test_uint8_pixels_are_within_one_level_of_the_reference_path(samples) -> None:  # type: ignore[no-untyped-def]
    """`pixels` (one-step box resize, uint8) against torchvision's resize-then-crop in float: every
    value within one level of 255 after undoing the normalisation, and most exactly equal."""
    from pixelsift.imaging.images import open_image

    p = Preprocessing(resize=256, crop=224)
    for path in sorted(samples.glob("*.*g")):
        img = open_image(path)
        fast = p.pixels(img)
        assert fast.dtype == np.uint8 and fast.shape == (3, 224, 224)
        reference = p(img)
        np.testing.assert_allclose(p.normalise_batch(fast[None])[0], reference, atol=1.01 / (255 * 0.225))


def test_normalise_batch_equals_the_float_path_on_the_same_pixels() -> None:
    p = Preprocessing(resize=8, crop=8, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    np.testing.assert_allclose(p.normalise_batch(p.pixels(img)[None])[0], p.normalise(img), atol=1e-6)


def test_squash_keeps_the_whole_photo_and_round_trips_through_its_record() -> None:
    from pixelsift.models.preprocess import Preprocessing

    squash = Preprocessing(resize=300, crop=300, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), fit="squash")
    img = Image.new("RGB", (600, 200), (0, 0, 0))
    img.paste((255, 255, 255), (500, 0, 600, 200))  # the right sixth: a crop would cut it off
    pixels = squash.pixels(img)
    assert pixels.shape == (3, 300, 300) and pixels.dtype == np.uint8
    assert pixels[:, :, -40:].min() == 255 and pixels[:, :, :240].max() == 0
    assert squash(img).shape == (3, 300, 300) and np.allclose(squash(img)[:, 0, 0], -1.0)
    assert Preprocessing.from_dict(squash.to_dict()) == squash
    with pytest.raises(ValueError, match="fit"):
        Preprocessing(resize=300, crop=300, fit="stretch")  # type: ignore[arg-type]
