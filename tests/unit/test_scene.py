"""The scene regions (sky, grass, tree, road) read from colour, texture and place, and the words that
reach them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from pixelsift.imaging import scene
from pixelsift.models.vocabulary import Vocabulary

BLUE_SKY = (0.45, 0.65, 0.95)
GRASS_GREEN = (0.25, 0.6, 0.2)
ASPHALT = (0.4, 0.4, 0.4)


def _picture(
    top: tuple[float, float, float],
    bottom: tuple[float, float, float],
    rough_bottom: float = 0.0,
    noise: float = 0.01,
) -> np.ndarray:
    """A 48x64 RGB picture in [0, 1]: one colour above the middle, another below (with noise of
    amplitude `rough_bottom` there, as grass has), and the slight noise of every photo."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((48, 64, 3), np.float32)
    rgb[:24] = top
    rgb[24:] = bottom
    rgb[24:] += rng.uniform(-rough_bottom, rough_bottom, size=(24, 64, 1)).astype(np.float32)
    rgb += rng.uniform(-noise, noise, size=rgb.shape).astype(np.float32)
    return np.clip(rgb, 0, 1)


def test_a_blue_sky_over_a_green_field_is_sky_and_grass_not_road() -> None:
    labels = dict(scene.scene_labels(_picture(BLUE_SKY, GRASS_GREEN, rough_bottom=0.08)))
    assert labels["sky"] > 0.9 and labels["grass"] > 0.9
    assert labels["road"] == 0.0


def test_grey_ground_under_a_sky_is_road_but_a_grey_wall_from_top_to_bottom_is_not() -> None:
    street = dict(scene.scene_labels(_picture(BLUE_SKY, ASPHALT)))
    wall = dict(scene.scene_labels(_picture(ASPHALT, ASPHALT)))
    assert street["road"] > 0.5 and street["sky"] > 0.9
    assert wall["road"] == 0.0, "grey joined to the top edge is a wall or a grey sky, not a road"
    assert wall["grass"] == 0.0


def test_flat_fills_of_a_drawing_are_not_sky_grass_or_road() -> None:
    for top, bottom in ((BLUE_SKY, GRASS_GREEN), (BLUE_SKY, ASPHALT)):
        labels = dict(scene.scene_labels(_picture(top, bottom, noise=0.0)))
        assert labels["sky"] == labels["grass"] == labels["road"] == 0.0, (top, bottom)


def test_a_photo_with_none_of_the_regions_gets_zero_for_each_and_still_all_four_labels() -> None:
    red = np.zeros((40, 40, 3), np.float32)
    red[..., 0] = 0.8
    labels = scene.scene_labels(red)
    assert [name for name, _ in labels] == [region.name for region in scene.REGIONS]
    assert all(p == 0.0 for _, p in labels), "stored all the same: the photo is known to be looked at"


@pytest.mark.parametrize("region", scene.REGIONS, ids=lambda r: r.name)
def test_a_regions_probability_is_zero_without_it_and_rises_with_its_share(region: scene.SceneRegion) -> None:
    shares = np.linspace(0, 1, 11)
    probabilities = [region.probability(float(s)) for s in shares]
    assert probabilities[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(probabilities))
    assert probabilities[-1] <= 1.0


def test_tiny_or_flat_inputs_give_no_region() -> None:
    assert all(v == 0.0 for v in scene.region_shares(np.zeros((1, 5, 3), np.float32)).values())


def test_the_small_copy_leaves_the_callers_image_alone() -> None:
    image = Image.new("RGB", (640, 480), (10, 200, 30))
    copy = scene.small_copy(image)
    assert image.size == (640, 480)
    assert copy.shape == (48, 64, 3) and copy.dtype == np.float32 and copy.max() <= 1.0


def test_words_reach_the_regions_they_name_their_kinds_and_places_defined_by_them() -> None:
    vocab = Vocabulary.load()
    assert vocab.scene_regions("street") == {"road": 1.0}, "a street is a kind of road (WordNet)"
    assert vocab.scene_regions("highways") == {"road": 1.0}
    assert vocab.scene_regions("lawn") == {"grass": 0.8}, "a lawn is defined by its grass"
    assert vocab.scene_regions("forest") == {"tree": 0.8}
    assert vocab.scene_regions("field") == {}, "'cleared of trees' does not make a field a tree"
    assert vocab.scene_regions("dog") == {} and vocab.scene_regions("scythe") == {}


def test_every_region_is_reached_by_its_own_name() -> None:
    vocab = Vocabulary.load()
    for region in scene.REGIONS:
        assert vocab.scene_regions(region.name) == {region.name: 1.0}
    reached = {r for entry in vocab.scene.values() for r, _ in entry}
    assert reached == {region.name for region in scene.REGIONS}, "the table and the rules name the same ones"


def test_the_numpy_filters_compute_what_opencv_does() -> None:
    """The rules were fitted on these exact numbers; OpenCV is optional, so they are numpy's."""
    cv2 = pytest.importorskip("cv2")
    rgb = np.random.default_rng(5).random((43, 64, 3), dtype=np.float32)
    rgb[:10] = (0.3, 0.5, 0.9)  # a flat band: zero spread, equal channels at the hue's branches
    rgb[10:12] = 0.5
    h, s, v = scene._hsv(rgb)
    want = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    assert np.allclose(np.dstack([h, s, v]), want, atol=1e-4)
    gx, gy = scene._sobel(v)
    assert np.allclose(gx, cv2.Sobel(v, cv2.CV_32F, 1, 0, ksize=3), atol=1e-5)
    assert np.allclose(gy, cv2.Sobel(v, cv2.CV_32F, 0, 1, ksize=3), atol=1e-5)
    assert np.allclose(scene._box3(v), cv2.blur(v, (3, 3)), atol=1e-6)
    mask = v > 0.5
    _, components = cv2.connectedComponents(mask.view(np.uint8), connectivity=4)
    touching = np.isin(components, np.setdiff1d(components[0], [0]))
    assert np.array_equal(scene._joined_to(mask, 0), touching)
