"""torchvision detectors with random weights through pixelsift's whole path, offline.

Weights are random except the class head, which is made to call everything a "car" (COCO id 3), so the
91-id numbering is checked end to end. They enter the cache the way a user's file does: `models add`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelsift.cli import main
from pixelsift.detect import draw_detections, load_detector
from pixelsift.models import get_model_spec

CAR = 3  # COCO category id


def forced_state(name: str, favoured: int = CAR) -> dict[str, torch.Tensor]:
    spec = get_model_spec(name)
    assert spec.build is not None
    torch.manual_seed(0)
    net = spec.build()
    with torch.no_grad():
        if name.startswith("fasterrcnn"):
            bias = net.roi_heads.box_predictor.cls_score.bias
            bias.fill_(-10.0)
            bias[favoured] = 10.0
        else:  # SSD heads: one conv per feature map, anchors x classes outputs
            for conv in net.head.classification_head.module_list:
                last = conv[-1] if isinstance(conv, torch.nn.Sequential) else conv
                per_anchor = last.bias.view(-1, 91)
                per_anchor.fill_(-10.0)
                per_anchor[:, favoured] = 10.0
    return net.state_dict()


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320_mobilenet_v3_large"])
def test_random_weight_detector_through_the_full_path(
    name: str, home: Path, tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / f"{name}.pth"
    torch.save(forced_state(name), file)
    assert main(["models", "add", name, str(file)]) == 0
    capsys.readouterr()
    detector = load_detector(name, conf=0.5, iou=0.4)
    network = detector.runner.network.net
    owner = getattr(network, "roi_heads", network)
    assert (owner.score_thresh, owner.nms_thresh) == (0.5, 0.4), "--conf / --iou reach the network"
    [result] = detector.detect(samples / "coffee.png")
    assert result.ok and (result.width, result.height) == (600, 400)
    dets = result.detections
    assert len(dets) > 0 and set(dets.class_names) == {"car"}
    assert dets.summary() == (f"{len(dets)} cars" if len(dets) > 1 else "1 car")
    assert (dets.scores >= 0.5).all()
    assert (
        (dets.boxes[:, [0, 2]] <= 600).all()
        and (dets.boxes[:, [1, 3]] <= 400).all()
        and (dets.boxes >= 0).all()
    )
    drawn = draw_detections(Image.open(samples / "coffee.png"), dets)
    assert drawn.size == (600, 400)
    assert (
        main(
            [
                "detect",
                str(samples / "coffee.png"),
                "-m",
                name,
                "--conf",
                "0.5",
                "--iou",
                "0.4",
                "--format",
                "json",
            ]
        )
        == 0
    )
    [record] = json.loads(capsys.readouterr().out)
    assert [d["label"] for d in record["detections"]] == dets.class_names
    assert np.allclose([d["box"] for d in record["detections"]], dets.boxes, atol=1e-3)


def test_boxes_of_cocos_unused_ids_are_dropped_not_reported_as_na(
    home: Path, tmp_path: Path, samples: Path
) -> None:
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    unused = get_model_spec(name).categories.index("N/A")  # COCO id 12: no class
    file = tmp_path / f"{name}.pth"
    torch.save(forced_state(name, favoured=unused), file)
    assert main(["models", "add", name, str(file), "--quiet"]) == 0
    detector = load_detector(name, conf=0.5)
    boxes, _, labels, _ = detector.runner(
        [detector.transform(Image.open(samples / "coffee.png").convert("RGB"))]
    )
    assert len(boxes) > 0 and set(labels.tolist()) == {unused}, "the network itself finds N/A boxes"
    [result] = detector.detect(samples / "coffee.png")
    assert result.ok and len(result.detections) == 0 and "N/A" not in result.detections.class_names


def test_torchvision_detectors_refuse_an_input_size(home: Path) -> None:
    from pixelsift.detect.backends.torchvision_detectors import load
    from pixelsift.errors import UsageError
    from pixelsift.runtime.options import RunOptions

    with pytest.raises(UsageError, match="imgsz"):
        load(get_model_spec("ssdlite320_mobilenet_v3_large"), RunOptions(), imgsz=320)


def test_photos_of_different_sizes_share_a_forward_pass(home: Path, tmp_path: Path, samples: Path) -> None:
    """A batch of photos of different shapes goes through torchvision as one list (what a GPU runs, 8
    at a time): the boxes of each photo are its own, in input order, and a batch of one photo gives
    what the photo alone gives."""
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    torch.save(forced_state(name), tmp_path / "w.pth")
    assert main(["models", "add", name, str(tmp_path / "w.pth")]) == 0
    photos = [samples / "coffee.png", samples / "chelsea.png", samples / "rocket.jpg"]
    alone = load_detector(name, conf=0.5, batch_size=1).detect(photos)
    calls: list[int] = []
    batched_detector = load_detector(name, conf=0.5, batch_size=3)
    real_infer = batched_detector.infer
    batched_detector.infer = lambda pixels: calls.append(len(pixels)) or real_infer(pixels)  # type: ignore[method-assign]
    together = batched_detector.detect(photos)
    assert calls == [3], "one forward pass for the three photos"
    assert [r.path for r in together] == [str(p) for p in photos]
    for a, b in zip(alone, together, strict=True):
        assert (a.width, a.height) == (b.width, b.height)
        assert len(a.detections) == len(b.detections) > 0
        # torchvision pads the smaller photos of a batch to the largest: borders see zeros, not edges
        np.testing.assert_allclose(a.detections.scores, b.detections.scores, atol=0.05)
