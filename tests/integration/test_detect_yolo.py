"""ultralytics YOLO through pixelsift's path with random `yolov8n.yaml` weights, never touching the network.

The weights are random except one bias: every anchor is made to see a "car", so the class mapping is
checked end to end (a wrong mapping would print another class name).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import pixelsift_home
from pixelsift.cli import main
from pixelsift.detect import DetectionResult, default_detector_name, draw_detections, load_detector
from pixelsift.errors import WeightsInvalidError, WeightsMissingError

# Checked without importing: ultralytics must first be imported the way pixelsift does it (see
# test_unreadable_files_are_still_reported_after_ultralytics_is_imported).
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("cv2") is None,
    reason="needs pip install 'pixelsift[yolo]'",
)

CAR = 2  # in YOLO's 0-79 numbering


def forced_network(class_id: int = CAR, seed: int = 0, name: str = "yolov8n"):  # type: ignore[no-untyped-def]
    """`name` (yolov8n) with random weights whose class head strongly prefers `class_id` everywhere."""
    import torch

    from pixelsift.models.families.yolo import build_network

    torch.manual_seed(seed)
    net = build_network(name)
    with torch.no_grad():
        for branch in net.model[-1].cv3:
            bias = branch[-1].bias
            bias.fill_(-12.0)
            bias[class_id] = 4.0
    return net.eval()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("yolo") / "yolov8n-car.safetensors"
    save_file({k: v.contiguous() for k, v in forced_network().state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def yolo_home(tmp_path_factory: pytest.TempPathFactory, weights_file: Path) -> Iterator[Path]:
    """A PIXELSIFT_HOME whose cache holds the forced yolov8n weights, imported with `models add`."""
    with pixelsift_home(tmp_path_factory.mktemp("yolo-home")) as home:
        assert main(["models", "add", "yolov8n", str(weights_file)]) == 0
        yield home


@pytest.fixture(scope="module")
def yolo(yolo_home: Path):  # type: ignore[no-untyped-def]
    return load_detector("yolov8n")


def test_full_path_result_summary_drawing_and_json(
    yolo, yolo_home: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    [result] = yolo.detect(samples / "coffee.png")
    assert isinstance(result, DetectionResult) and result.ok
    assert (result.width, result.height) == (600, 400)
    dets = result.detections
    assert len(dets) > 0 and set(dets.class_names) == {"car"}
    assert dets.summary() == f"{len(dets)} cars"
    assert (dets.boxes[:, [0, 2]] >= 0).all() and (dets.boxes[:, [0, 2]] <= 600).all()
    assert (dets.boxes[:, [1, 3]] >= 0).all() and (dets.boxes[:, [1, 3]] <= 400).all()
    assert (np.diff(dets.scores) <= 0).all(), "best first"
    assert len(dets) <= 300
    photo = Image.open(samples / "coffee.png")
    drawn = draw_detections(photo, dets)
    assert drawn.size == photo.size and not np.array_equal(
        np.asarray(drawn), np.asarray(photo.convert("RGB"))
    )
    assert main(["detect", str(samples / "coffee.png"), "-m", "yolov8n", "--format", "json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["detections"] == json.loads(json.dumps(dets.to_list()))
    assert main(["detect", str(samples / "coffee.png"), "-m", "yolov8n", "--classes", "person"]) == 0
    assert ": 600x400 no objects, " in capsys.readouterr().out


def test_same_objects_as_ultralytics_own_predict(yolo, weights_file: Path, samples: Path) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file
    from ultralytics import YOLO

    from pixelsift.detect import Detections

    reference = YOLO("yolov8n.yaml")
    reference.model.load_state_dict(load_file(str(weights_file)))
    for name in ("coffee.png", "astronaut.png"):
        [theirs] = reference.predict(str(samples / name), conf=0.25, iou=0.45, verbose=False)
        expected = Detections.from_ultralytics(theirs)
        [ours] = yolo.detect(samples / name)
        # random weights give near-equal scores, whose order (and so which boxes NMS keeps) is
        # arbitrary: the exact box arithmetic is compared in the two tests below
        assert len(ours.detections) == len(expected) > 0
        assert (
            ours.detections.class_ids.tolist() == expected.class_ids.tolist()
        )  # its yaml names are "0".."79"
        assert ours.detections.scores == pytest.approx(expected.scores, abs=2e-3)


@pytest.mark.parametrize("size", [(600, 400), (512, 512), (427, 640), (1, 300), (3000, 7)])
def test_letterbox_is_ultralytics_letterbox(size: tuple[int, int]) -> None:
    from ultralytics.data.augment import LetterBox

    from pixelsift.detect.backends.yolo import letterbox

    width, height = size
    arr = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    for rect in (True, False):
        ours, _ = letterbox(arr, 640, 32, rect=rect)
        theirs = LetterBox(640, auto=rect, stride=32)(image=arr)
        assert ours.shape == (3, *theirs.shape[:2])
        assert np.array_equal(np.round(ours * 255).astype(np.uint8), theirs.transpose(2, 0, 1))


def test_postprocess_is_ultralytics_nms_and_scale_boxes() -> None:
    """Distinct random scores (no ties): the same boxes, scores and classes as ultralytics' own code."""
    import torch
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import scale_boxes

    from pixelsift.detect.backends.yolo import decode_predictions
    from pixelsift.models.categories import coco80

    rng = np.random.default_rng(1)
    anchors, shape, photo = 4000, (448, 640), (427, 640)  # letterboxed (h, w) and the photo's (h, w)
    raw = np.empty((84, anchors), np.float32)
    raw[0] = rng.uniform(0, 640, anchors)
    raw[1] = rng.uniform(0, 448, anchors)
    raw[2:4] = rng.uniform(8, 120, (2, anchors))
    raw[4:] = rng.uniform(0, 0.6, (80, anchors)) ** 3
    gain = 640 / 640
    top = round((448 - 427 * gain) / 2 - 0.1)
    ours = decode_predictions(raw, (gain, gain, 0, top), 0.1, 0.45, 300, coco80())
    [theirs] = non_max_suppression(torch.from_numpy(raw[None]), conf_thres=0.1, iou_thres=0.45, max_det=300)
    theirs[:, :4] = scale_boxes(shape, theirs[:, :4], photo)
    mine = ours.clipped(640, 427)
    rows = np.column_stack([mine.boxes, mine.scores, mine.class_ids]).astype(np.float64)
    their_rows = theirs.numpy().astype(np.float64)
    assert len(rows) == len(their_rows) > 20

    def ordered(a: np.ndarray) -> np.ndarray:  # by class, then position (scores may tie across classes)
        return a[np.lexsort((a[:, 1], a[:, 0], a[:, 5]))]

    assert ordered(rows) == pytest.approx(ordered(their_rows), abs=1e-3)


def test_the_best_ready_detector_becomes_the_default(yolo_home: Path) -> None:
    assert default_detector_name() == "yolov8n", "YOLOv8n (37.3 mAP) beats the offline SSD (22.0)"


def test_an_ultralytics_checkpoint_is_read_with_the_safe_loader(
    home: Path, tmp_path: Path, samples: Path
) -> None:
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")
    model.model = forced_network()
    checkpoint = tmp_path / "yolov8n.pt"
    model.save(checkpoint)  # a pickled model, as ultralytics publishes them
    assert main(["models", "add", "yolov8n", str(checkpoint)]) == 0
    [result] = load_detector("yolov8n").detect(samples / "astronaut.png")
    assert result.ok and set(result.detections.class_names) == {"car"}


class Payload:
    """A pickle that would run a command when loaded freely."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from pixelsift.models.families.yolo import read_checkpoint

    marker = tmp_path / "it-ran"
    evil = tmp_path / "yolov8n.pt"
    torch.save({"model": Payload(marker), "date": "2024"}, evil)
    with pytest.raises(WeightsInvalidError, match="could run code"):
        read_checkpoint(evil)
    assert main(["models", "add", "yolov8n", str(evil)]) == 1
    assert "could run code" in capsys.readouterr().err
    assert not marker.exists(), "the payload never ran"
    assert not (home / "weights" / "ultralytics" / "yolov8n.pt").exists(), "nothing was imported"


def test_offline_without_weights_names_the_file_and_the_fix(home: Path) -> None:
    with pytest.raises(WeightsMissingError) as info:
        load_detector("yolov8n")
    message = str(info.value)
    assert "yolov8n.pt" in message and "PIXELSIFT_OFFLINE=1" in message
    assert "https://github.com/ultralytics/assets/releases/download/" in message
    assert "pixelsift models fetch yolov8n" in message


def test_importing_ultralytics_through_pixelsift_stays_off_the_network(tmp_path: Path) -> None:
    """No DNS lookups or connections, no output on stdout, even when the user set no YOLO_* variables."""
    script = """
import os, socket, sys
calls = []
def refuse(*args, **kwargs):
    calls.append(args[:1])
    raise OSError("network refused by the test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = lambda self, address: refuse(address)
from pixelsift.models.families.yolo import build_network, import_ultralytics
import_ultralytics()
build_network("yolov8n")
from ultralytics.utils import ONLINE
report = {"calls": len(calls), "online": ONLINE, "offline_env": os.environ.get("YOLO_OFFLINE")}
print(json.dumps(report), file=sys.stderr)
""".replace("import os,", "import json, os,")
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_")}
    env["YOLO_CONFIG_DIR"] = str(tmp_path)  # keep ultralytics' settings file out of the user's home
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "ultralytics printed on stdout, where pixelsift writes data"
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"calls": 0, "online": False, "offline_env": "1"}


def test_unreadable_files_are_still_reported_after_ultralytics_is_imported(tmp_path: Path) -> None:
    """ultralytics replaces PIL.Image.open with a wrapper that pip-installs pi-heif on unknown files."""
    from PIL import Image as PILImage

    from pixelsift.detect.backends.yolo import import_ultralytics
    from pixelsift.errors import ImageError
    from pixelsift.imaging.images import open_image

    import_ultralytics()
    assert getattr(PILImage.open, "__module__", "") == "PIL.Image"
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    with pytest.raises(ImageError, match="not an image"):
        open_image(notes)


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
def test_onnx_export_runs_through_opencv_dnn_with_the_same_results(
    yolo, tmp_path: Path, samples: Path
) -> None:  # type: ignore[no-untyped-def]
    """The exported graph, run by OpenCV DNN on the detector's own letterboxed pixels, gives torch's
    predictions, and the whole ONNX path (letterbox, OpenCV, decoding, class names, box scaling) gives
    the torch path's kind of detections.

    Which boxes survive is compared only as far as it is defined: this random network's features
    vanish (std ~1e-7 before the head), so all 8,400 anchors give the very same car score, and which 300
    of those exact ties NMS keeps is decided by float rounding. OpenCV 4.13 matched torch bit for bit
    (class scores within 6e-12) and kept the same boxes; OpenCV 4.14 rounds like ONNX Runtime does
    (within 6e-8 of torch; boxes within 3e-5 for both) and breaks the ties differently. Measured on
    2026-12-06: neither pixelsift's ONNX path nor OpenCV 4.14 is wrong; the old test compared tie-breaks.
    """
    import torch

    from pixelsift.detect.backends.yolo import boxes_and_classes

    net = forced_network()
    net.fuse(verbose=False)
    two = boxes_and_classes(net).eval()

    class OneOutput(torch.nn.Module):  # ultralytics' own export: (1, 84, 8400)
        def __init__(self) -> None:
            super().__init__()
            self.two = two

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat(self.two(x), dim=1)

    wrapped = OneOutput().eval()
    onnx_path = tmp_path / "yolov8n-car.onnx"
    torch.onnx.export(wrapped, torch.zeros(1, 3, 640, 640), str(onnx_path), dynamo=False, opset_version=17)
    from_onnx = load_detector(str(onnx_path))
    assert from_onnx.categories[CAR] == "car"
    image = Image.open(samples / "coffee.png").convert("RGB")
    pixels, _ = from_onnx.prepare(image, batched=False)
    [through_opencv] = from_onnx.infer(pixels[None])
    with torch.no_grad():
        expected = wrapped(torch.from_numpy(np.ascontiguousarray(pixels[None]))).numpy()[0]
    assert through_opencv.shape == expected.shape == (84, 8400)
    assert np.abs(through_opencv - expected).max() < 1e-3
    [onnx_result] = from_onnx.detect(samples / "coffee.png")
    # the torch path letterboxes to the same 640 x 640 square when it batches
    batched = load_detector("yolov8n", batch_size=2)
    [torch_result] = batched.iter_detect(samples / "coffee.png")
    for result in (onnx_result, torch_result):  # boxes in the 600 x 400 photo, not the 640 px square
        assert set(result.detections.class_names) == {"car"}
        # how many of the tied boxes survive NMS depends on the tie-breaks too (4.14: 5 more than torch)
        assert 0 < len(result.detections.class_names) <= 300
        boxes = result.detections.boxes
        assert boxes[:, [0, 2]].min() >= -1 and boxes[:, [0, 2]].max() <= 601
        assert boxes[:, [1, 3]].min() >= -1 and boxes[:, [1, 3]].max() <= 401


def test_smaller_input_size_still_reports_boxes_in_the_photo(yolo_home: Path, samples: Path) -> None:
    detector = load_detector("yolov8n", imgsz=320)
    [result] = detector.detect(samples / "coffee.png")
    boxes = result.detections.boxes
    assert len(boxes) and boxes[:, 2].max() > 320, "boxes are in the 600 px photo, not the 320 px input"
    assert boxes[:, 2].max() <= 600 and boxes[:, 3].max() <= 400


def test_yolo26_runs_through_the_same_path(
    tmp_path: Path, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ultralytics' newest family: its record, weights import and detection path, with the class head
    forced to "car" (random weights otherwise)."""
    from safetensors.torch import save_file

    monkeypatch.setenv("PIXELSIFT_HOME", str(tmp_path / "home"))
    weights = tmp_path / "yolo26n-car.safetensors"
    state = forced_network(name="yolo26n").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    assert main(["models", "add", "yolo26n", str(weights)]) == 0
    detector = load_detector("yolo26n")
    [result] = detector.detect(samples / "coffee.png")
    assert detector.name == "yolo26n" and result.ok
    assert result.detections.class_names and set(result.detections.class_names) == {"car"}
    assert result.detections.boxes[:, [0, 2]].max() <= 600 and result.detections.boxes[:, [1, 3]].max() <= 400
