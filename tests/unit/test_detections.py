"""The Detections result type: shape checks, adapters, filters, and the summary's plurals and order."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from pixelsift.detect import DetectionResult, Detections, plural
from pixelsift.models.categories import coco80, coco91


def make(names: list[str], scores: list[float] | None = None) -> Detections:
    n = len(names)
    scores = scores if scores is not None else [0.9 - 0.01 * i for i in range(n)]
    boxes = [[i, i, i + 10, i + 20] for i in range(n)]
    return Detections(np.array(boxes).reshape(-1, 4), np.array(scores), np.arange(n), names)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("person", "persons"),  # as ultralytics prints it
        ("bus", "buses"),
        ("knife", "knives"),
        ("sheep", "sheep"),
        ("skis", "skis"),
        ("scissors", "scissors"),
        ("broccoli", "broccoli"),
        ("wine glass", "wine glasses"),
        ("mouse", "mice"),
        ("couch", "couches"),
        ("bench", "benches"),
        ("toothbrush", "toothbrushes"),
        ("sandwich", "sandwiches"),
        ("hair drier", "hair driers"),
        ("teddy bear", "teddy bears"),
        ("tv", "tvs"),
        ("sports ball", "sports balls"),
        ("butterfly", "butterflies"),
        ("toy", "toys"),
        ("box", "boxes"),
        ("stop sign", "stop signs"),
        ("traffic light", "traffic lights"),
    ],
)
def test_plurals(name: str, expected: str) -> None:
    assert plural(name) == expected


def test_every_coco_class_has_a_distinct_plural() -> None:
    plurals = [plural(name) for name in coco80()]
    assert len(set(plurals)) == 80
    assert all(
        p != name or name in {"sheep", "skis", "scissors", "broccoli"}
        for p, name in zip(plurals, coco80(), strict=True)
    )


def test_summary_counts_most_frequent_first_with_plurals() -> None:
    dets = make(["car", "person", "stop sign", "person", "car", "person", "person"])
    assert dets.summary() == "4 persons, 2 cars, 1 stop sign"


def test_summary_ties_keep_the_order_of_each_class_best_detection() -> None:
    # scores are best first: dog (0.9) before cat (0.8); both appear twice
    assert make(["dog", "cat", "cat", "dog"]).summary() == "2 dogs, 2 cats"
    assert make(["knife", "bus", "sheep"]).summary() == "1 knife, 1 bus, 1 sheep"
    assert make(["bus", "bus", "knife", "knife", "knife"]).summary() == "3 knives, 2 buses"


def test_summary_when_nothing_was_found() -> None:
    assert Detections.empty().summary() == "no objects"
    assert len(Detections.empty()) == 0


def test_shapes_are_checked_and_dtypes_normalised() -> None:
    dets = Detections([[1, 2, 3, 4]], [0.5], [7.0], ["x"])
    assert dets.boxes.dtype == np.float32 and dets.boxes.shape == (1, 4)
    assert dets.scores.dtype == np.float32 and dets.class_ids.dtype == np.int64
    with pytest.raises(ValueError, match="shape"):
        Detections(np.zeros((2, 3)), np.zeros(2), np.zeros(2), ["a", "b"])
    with pytest.raises(ValueError, match="equally many"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2), ["a", "b"])
    with pytest.raises(ValueError, match="equally many"):
        Detections(np.zeros((2, 4)), np.zeros(2), np.zeros(2), ["a"])
    with pytest.raises(ValueError, match="finite"):
        Detections(np.array([[0, 0, np.nan, 1]]), [0.5], [0], ["a"])


def test_filter_by_class_and_score() -> None:
    dets = make(["person", "car", "dog", "car"], scores=[0.9, 0.6, 0.4, 0.3])
    assert dets.filter(classes=["car"]).class_names == ["car", "car"]
    assert dets.filter(min_score=0.5).class_names == ["person", "car"]
    both = dets.filter(classes={"car", "dog"}, min_score=0.35)
    assert both.class_names == ["car", "dog"]
    assert both.scores.tolist() == pytest.approx([0.6, 0.4])
    assert np.array_equal(both.boxes, dets.boxes[[1, 2]])
    assert len(dets.filter(classes=[])) == 0


def test_views_agree_with_each_other() -> None:
    dets = make(["person", "car"], scores=[0.75, 0.5])
    rows = dets.to_list()
    assert rows[0] == {"label": "person", "score": 0.75, "box": [0.0, 0.0, 10.0, 20.0]}
    assert json.loads(json.dumps(dets.to_dict()))["class_names"] == ["person", "car"]
    frame = dets.to_pandas()
    assert list(frame.columns) == ["label", "score", "x1", "y1", "x2", "y2", "class_id"]
    assert frame["label"].tolist() == ["person", "car"]
    assert frame[["x1", "y1", "x2", "y2"]].to_numpy().tolist() == [r["box"] for r in rows]


def test_from_arrays_sorts_best_first_and_names_unknown_ids() -> None:
    dets = Detections.from_arrays([[0, 0, 1, 1], [0, 0, 2, 2]], [0.2, 0.8], [1, 99], ["a", "b"])
    assert dets.scores.tolist() == pytest.approx([0.8, 0.2])
    assert dets.class_names == ["class_99", "b"]


def test_from_opencv_ssd_scales_fractions_and_keeps_one_image() -> None:
    rows = np.array(
        [
            [0, 1, 0.9, 0.1, 0.2, 0.5, 0.6],  # image 0: person
            [1, 3, 0.8, 0.0, 0.0, 1.0, 1.0],  # image 1: car
            [0, 18, 0.7, 0.5, 0.5, 1.0, 1.0],  # image 0: dog
        ],
        np.float32,
    ).reshape(1, 1, 3, 7)
    dets = Detections.from_opencv_ssd(rows, 200, 100, coco91(), image_id=0)
    assert dets.class_names == ["person", "dog"]
    assert dets.boxes[0].tolist() == pytest.approx([20, 20, 100, 60])
    assert (
        Detections.from_opencv_ssd(rows, 200, 100, coco91(), image_id=None).summary()
        == "1 person, 1 car, 1 dog"
    )


def test_from_torchvision_uses_the_91_id_numbering() -> None:
    out = {
        "boxes": torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]),
        "scores": torch.tensor([0.3, 0.9]),
        "labels": torch.tensor([13, 3]),
    }
    dets = Detections.from_torchvision(out, coco91())
    assert dets.class_names == ["car", "stop sign"]
    assert dets.boxes[0].tolist() == [5.0, 6.0, 7.0, 8.0]


def test_from_ultralytics_results() -> None:
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("needs pip install 'pixelsift[yolo]'")
    from pixelsift.detect.backends.yolo import import_ultralytics

    import_ultralytics()  # the way pixelsift imports it: offline, quiet, Pillow left alone
    from ultralytics.engine.results import Results

    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0, 0.5, 2.0], [0.0, 0.0, 5.0, 5.0, 0.9, 0.0]])
    result = Results(
        np.zeros((50, 60, 3), np.uint8), path="x.jpg", names=dict(enumerate(coco80())), boxes=boxes
    )
    dets = Detections.from_ultralytics(result)
    assert dets.class_names == ["person", "car"]
    assert dets.boxes[1].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert dets.scores.tolist() == pytest.approx([0.9, 0.5])


def test_scaled_and_clipped() -> None:
    dets = Detections(
        [[10, 10, 50, 30], [-5, -5, 500, 500], [300, 300, 400, 400]], [0.9, 0.8, 0.7], [0, 1, 2], list("abc")
    )
    scaled = dets.scaled(2.0, 0.5)
    assert scaled.boxes[0].tolist() == [20, 5, 100, 15]
    clipped = dets.clipped(200, 100)
    assert clipped.class_names == ["a", "b"], "a box wholly outside the image is dropped"
    assert clipped.boxes[1].tolist() == [0, 0, 200, 100]


def test_detection_result_json_shape() -> None:
    dets = make(["person"], scores=[0.5])
    result = DetectionResult(
        "a.jpg", 64, 48, dets, speed_ms={"preprocess": 1.0, "inference": 2.0, "postprocess": 3.0}
    )
    assert result.to_dict() == {
        "path": "a.jpg",
        "width": 64,
        "height": 48,
        "detections": [{"label": "person", "score": 0.5, "box": [0.0, 0.0, 10.0, 20.0]}],
        "speed_ms": {"preprocess": 1.0, "inference": 2.0, "postprocess": 3.0},
    }
    failed = DetectionResult("b.jpg", error="not an image")
    assert failed.to_dict() == {"path": "b.jpg", "error": "not an image"} and not failed.ok
    with pytest.raises(ValueError):
        DetectionResult("c.jpg")
