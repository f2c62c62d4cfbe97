"""Instance masks: COCO RLE as pycocotools writes and reads it, outlines, label images, areas, and masks
travelling with their objects through every `Detections` operation and onto the drawing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask

from pixelsift.detect import Detections, draw_detections
from pixelsift.detect.draw import FILL_ALPHA, class_colour
from pixelsift.detect.masks import Masks, mask_iou, rle_decode, rle_encode

# pycocotools' own decode warns under numpy 2 (its __array__ has no copy keyword); not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def random_masks(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        height, width = rng.integers(1, 50, 2)
        mask = rng.random((height, width)) < rng.random()
        if index % 7 == 0:
            mask[:] = False
        elif index % 7 == 1:
            mask[:] = True
        out.append(mask)
    return out


def test_rle_is_the_string_pycocotools_writes_and_both_read_it_back() -> None:
    for mask in random_masks(200):
        ours = rle_encode(mask)
        theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ours["counts"] == theirs["counts"].decode()
        assert ours["size"] == [int(v) for v in theirs["size"]]
        assert (coco_mask.decode({"size": ours["size"], "counts": ours["counts"].encode()}) == mask).all()
        assert (rle_decode(theirs) == mask).all()


def test_uncompressed_rle_decodes_and_a_damaged_one_is_refused() -> None:
    mask = np.array([[0, 1, 1], [0, 0, 1]], bool)
    assert (rle_decode({"size": [2, 3], "counts": [2, 1, 1, 2]}) == mask).all()  # column-major runs
    with pytest.raises(ValueError, match="cover 5 pixels"):
        rle_decode({"size": [2, 3], "counts": [2, 1, 2]})


def test_areas_are_fractions_of_the_photo_at_any_mask_resolution() -> None:
    data = np.zeros((2, 10, 20), bool)
    data[0, :5, :] = True  # the top half
    data[1, :, :5] = True  # the left quarter
    masks = Masks(data, (2000, 1000))
    assert masks.areas().tolist() == pytest.approx([0.5, 0.25])
    assert masks.pixel_areas().tolist() == pytest.approx([1_000_000, 500_000])
    full = masks.full()
    assert full.shape == (2, 1000, 2000)
    assert full[0, :500].all() and not full[0, 500:].any()


def test_polygons_outline_the_mask_in_photo_pixels() -> None:
    yy, xx = np.mgrid[0:60, 0:80]
    disc = (xx - 30) ** 2 + (yy - 28) ** 2 <= 18**2
    masks = Masks(disc[None], (800, 600))  # ten times the mask's resolution
    (polygon,) = masks.polygons(0)
    drawn = Image.new("1", (800, 600))
    ImageDraw.Draw(drawn).polygon(polygon, fill=1)
    assert mask_iou(np.asarray(drawn, bool), masks.mask(0)) > 0.97


def test_two_separate_parts_give_two_polygons_largest_first() -> None:
    data = np.zeros((1, 40, 40), bool)
    data[0, 2:8, 2:8] = True
    data[0, 20:38, 20:38] = True
    polygons = Masks(data, (40, 40)).polygons(0)
    assert len(polygons) == 2
    assert min(polygons[0][0::2]) > 15  # the big square first


def test_label_image_numbers_objects_and_the_better_score_wins_an_overlap() -> None:
    data = np.zeros((2, 4, 4), bool)
    data[0, :, :2] = True
    data[1, :, 1:] = True  # overlaps object 0 in column 1
    labels = Masks(data, (4, 4)).label_image(np.array([0.3, 0.9]))
    assert labels[:, 0].tolist() == [1] * 4
    assert labels[:, 1].tolist() == [2] * 4  # object 1 scores higher
    assert labels[:, 3].tolist() == [2] * 4


def masked_detections() -> Detections:
    data = np.zeros((3, 10, 10), bool)
    for index in range(3):
        data[index, index * 3 : index * 3 + 2] = True  # a band per object: tells them apart
    return Detections.from_arrays(
        [[0, 0, 50, 50], [10, 10, 60, 60], [5, 5, 20, 20]],
        [0.5, 0.9, 0.7],
        [0, 16, 2],
        {0: "person", 16: "dog", 2: "car"},
        Masks(data, (100, 100)),
    )


def test_masks_stay_with_their_objects_through_sorting_filtering_scaling_and_clipping() -> None:
    dets = masked_detections()
    assert dets.class_names == ["dog", "car", "person"]  # best first, masks reordered with them
    assert dets.masks is not None
    assert [int(np.flatnonzero(m.any(axis=1))[0]) for m in dets.masks.data] == [3, 6, 0]
    dogs = dets.filter(classes=["dog"])
    assert dogs.masks is not None and len(dogs.masks) == 1 and dogs.masks.data[0, 3].all()
    bigger = dets.scaled(2.0, 3.0)
    assert bigger.masks is not None and bigger.masks.size == (200, 300)
    assert bigger.masks.areas().tolist() == pytest.approx(dets.masks.areas().tolist())
    clipped = dets.clipped(8, 8)  # only the boxes starting inside survive
    assert clipped.masks is not None and len(clipped.masks) == len(clipped)
    with pytest.raises(ValueError, match="2 masks for 3 objects"):
        Detections(dets.boxes, dets.scores, dets.class_ids, dets.class_names, dets.masks[:2])


def test_json_and_dataframe_carry_area_polygons_and_rle() -> None:
    dets = masked_detections()
    first = dets.to_list()[0]
    assert first["area"] == pytest.approx(0.2)
    assert first["rle"]["size"] == [100, 100]
    assert rle_decode(first["rle"]).mean() == pytest.approx(0.2)
    assert len(first["polygons"]) == 1
    assert "polygons" not in dets.to_list(shapes=False)[0]
    frame = dets.to_pandas()
    assert frame["area"].tolist() == pytest.approx([0.2, 0.2, 0.2])
    plain = Detections(dets.boxes, dets.scores, dets.class_ids, dets.class_names)
    assert "area" not in plain.to_pandas() and "area" not in plain.to_list()[0]


def test_drawing_fills_each_mask_in_its_class_colour_and_adds_a_legend() -> None:
    photo = Image.new("RGB", (400, 300), (128, 128, 128))
    data = np.zeros((1, 30, 40), bool)
    data[0, 10:25, 5:20] = True  # photo pixels x 50-200, y 100-250
    dets = Detections([[50, 100, 200, 250]], [0.9], [16], ["dog"], Masks(data, (400, 300)))
    drawn = np.asarray(draw_detections(photo, dets), np.int16)
    colour = np.array(class_colour(16))
    expected = np.round(128 * (1 - FILL_ALPHA) + colour * FILL_ALPHA)
    assert np.abs(drawn[180, 120] - expected).max() <= 1  # inside the mask
    assert (drawn[280, 20] == 128).all()  # far outside: untouched
    # the legend: a white key in the top-right corner with the class colour's swatch
    corner = drawn[:40, 300:]
    assert ((corner == 255).all(axis=2)).sum() > 100
    assert (np.abs(corner - colour).max(axis=2) == 0).sum() > 20
    boxes_only = np.asarray(draw_detections(photo, Detections([[50, 100, 200, 250]], [0.9], [16], ["dog"])))
    assert (boxes_only[180, 120] == 128).all()  # no fill without masks
