"""Annotated copies: boxes and labels drawn inside the image, one colour per class, any size or mode."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelsift.detect import Detections, draw_detections
from pixelsift.detect.draw import BLACK, WHITE, class_colour, text_colour


def dets(boxes: list[list[float]], ids: list[int], names: list[str] | None = None) -> Detections:
    n = len(boxes)
    return Detections(
        np.array(boxes, float), np.linspace(0.9, 0.5, n), np.array(ids), names or [f"c{i}" for i in ids]
    )


def has_colour(arr: np.ndarray, colour: tuple[int, int, int], tolerance: int = 0) -> np.ndarray:
    return np.all(np.abs(arr.astype(int) - np.array(colour)) <= tolerance, axis=-1)


def test_box_outline_and_label_in_the_class_colour_without_touching_the_input() -> None:
    img = Image.new("RGB", (200, 150), (40, 40, 40))
    before = np.asarray(img).copy()
    out = draw_detections(img, dets([[50, 60, 150, 140]], [2], ["car"]), line_width=3)
    arr = np.asarray(out)
    assert np.array_equal(np.asarray(img), before), "the input image is not modified"
    colour = class_colour(2)
    assert has_colour(arr[100, 50:53], colour).all(), "left edge of the box"
    assert has_colour(arr[100, 148:151], colour).all(), "right edge of the box (drawn inward)"
    assert not has_colour(arr[100, 60:140], colour).any(), "the box is not filled"
    label_rows = arr[:60]
    assert has_colour(label_rows, colour).any(), "the label patch sits above the box"
    text = text_colour(colour)
    # antialiased text: pixels close to the contrasting colour inside the patch
    assert has_colour(label_rows, text, tolerance=60).sum() >= 10, (
        "the label has text in the contrasting colour"
    )


def test_distinct_colours_per_class_and_legible_text() -> None:
    colours = {class_colour(i) for i in range(80)}
    assert len(colours) == 80
    assert text_colour((255, 255, 0)) == BLACK
    assert text_colour((0, 0, 180)) == WHITE
    for i in range(80):  # every class colour gives at least 4.5:1 contrast (WCAG AA) with its text
        c = class_colour(i)
        lum = _luminance(c)
        t = 0.0 if text_colour(c) == BLACK else 1.0
        hi, lo = max(lum, t), min(lum, t)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, c


def _luminance(c: tuple[int, int, int]) -> float:
    from pixelsift.detect.draw import _luminance as lum

    return lum(c)


@pytest.mark.parametrize("size", [(1, 1), (6, 4), (37, 20)])
def test_tiny_images(size: tuple[int, int]) -> None:
    w, h = size
    img = Image.new("RGB", size, (10, 200, 10))
    out = draw_detections(img, dets([[0, 0, w, h], [-3, -3, w + 5, h + 5]], [0, 5], ["person", "dog"]))
    assert out.size == size and out.mode == "RGB"
    assert not np.array_equal(np.asarray(out), np.asarray(img)), "something was drawn"


def test_huge_image_lines_and_text_scale_with_it() -> None:
    img = Image.new("RGB", (6000, 4000), (128, 128, 128))
    out = draw_detections(img, dets([[1000, 1000, 3000, 3000]], [1], ["bicycle"]))
    arr = np.asarray(out)
    colour = class_colour(1)
    edge = has_colour(arr[2000, 990:1100], colour)
    assert edge.sum() >= 15, "a line several pixels wide on a 6000 px photo"
    label = has_colour(arr[:1000, 1000:1600], colour)
    assert label.any(axis=1).sum() >= 100, "a label tall enough to read on a 6000 px photo"


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "1", "I;16"])
def test_any_pillow_mode_gives_an_rgb_annotation(mode: str) -> None:
    base = Image.new("RGB", (80, 60), (255, 255, 255))
    img = base.convert(mode) if mode != "I;16" else Image.new("I;16", (80, 60), 40000)
    out = draw_detections(img, dets([[10, 10, 70, 50]], [3], ["cat"]), line_width=2)
    assert out.mode == "RGB" and out.size == (80, 60)
    assert has_colour(np.asarray(out)[30, 10:12], class_colour(3)).all()
    assert img.mode == mode


def test_transparent_rgba_is_drawn_on_white() -> None:
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    out = draw_detections(img, Detections.empty())
    assert np.asarray(out)[20, 20].tolist() == [255, 255, 255]


def test_labels_stay_inside_the_image_at_its_edges() -> None:
    img = Image.new("RGB", (120, 80), (0, 0, 0))
    # A box at the top-right corner: no room above it or to its right for a long label.
    out = draw_detections(
        img, dets([[100, 0, 120, 30]], [4], ["a very long class name"]), line_width=1, font_size=10
    )
    arr = np.asarray(out)
    colour = class_colour(4)
    rows = np.flatnonzero(has_colour(arr, colour).any(axis=1))
    cols = np.flatnonzero(has_colour(arr, colour).any(axis=0))
    assert rows.min() == 0, "label starts at the top edge, inside the image"
    assert cols.max() == 119 and cols.min() < 60, "label moved left so it ends at the right edge"
    assert has_colour(arr[: rows.max() + 1], text_colour(colour), tolerance=60).sum() >= 10, (
        "its text is there"
    )


def test_labels_of_overlapping_boxes_never_cover_each_other() -> None:
    """Three animals boxed on one spot ("dog", "cow", "zebra") and a box at the right edge: every label
    stays whole, inside the image, and hides no other label."""
    from pixelsift.detect.draw import _overlaps, place_labels

    anchors = [(100, 80), (102, 82), (98, 79), (600, 5)]
    sizes = [(90, 20), (80, 20), (95, 20), (120, 20)]
    rects = place_labels(anchors, sizes, 640, 480)
    assert all(x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480 for x, y, w, h in rects)
    assert [(w, h) for _, _, w, h in rects] == sizes
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not _overlaps(a, b), (a, b)
    assert rects[0] == (100, 60, 90, 20)  # the best one keeps its place above its box


def test_a_crowded_image_is_drawn_with_readable_labels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pixelsift.detect import Detections
    from pixelsift.detect.draw import draw_detections

    dets = Detections(
        [[100, 80, 300, 260], [102, 82, 298, 262], [98, 79, 305, 255]],
        [0.79, 0.6, 0.5],
        [16, 19, 22],
        ["dog", "cow", "zebra"],
    )
    before = Image.new("RGB", (400, 300), (90, 90, 90))
    drawn = draw_detections(before, dets)
    assert before.getpixel((5, 5)) == (90, 90, 90)  # the input is not changed
    arr = np.asarray(drawn)
    label_rows = [y for y in range(300) if (arr[y, 100:160] != 90).all(axis=1).sum() > 40]
    assert len(label_rows) >= 3 * 10  # three labels, each at least 10 rows of filled patch, stacked
