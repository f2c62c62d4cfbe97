"""Instance segmentation end to end.

Real mask logic runs on generated photos whose true masks are known, through pixelsift's YOLO-seg path
with a fixed network whose answer is known (`helpers.colour_segmenter`): decode, letterbox, network,
selection, masks assembled from prototypes, padding cut, scaling back to the photo, RLE. Mask R-CNN
and YOLO-seg themselves are built with random weights and checked for shapes, and against torchvision's
and ultralytics' own mask post-processing.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

import pixelsift
from helpers import colour_segmenter, pixelsift_home, shapes_photo
from pixelsift.cli import main
from pixelsift.detect import load_segmenter
from pixelsift.detect.masks import mask_iou, rle_decode

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("cv2") is None,
        reason="needs pip install 'pixelsift[yolo]'",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # pycocotools' decode under numpy 2
]


@pytest.fixture(scope="module")
def segmenter():  # type: ignore[no-untyped-def]
    return colour_segmenter()


def check_masks(result, truth: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    dets = result.detections
    assert sorted(dets.class_names) == sorted(truth)
    assert dets.masks.size == (result.width, result.height)
    for index, name in enumerate(dets.class_names):
        assert mask_iou(dets.masks.mask(index), truth[name]) >= 0.8
        rle = dets.to_list()[index]["rle"]
        decoded = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert mask_iou(decoded.astype(bool), truth[name]) >= 0.8
        assert float(dets.areas()[index]) == pytest.approx(truth[name].mean(), abs=0.01)


def test_known_shapes_come_back_as_their_masks(segmenter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo, truth = shapes_photo(900, 600)
    path = tmp_path / "shapes.png"
    photo.save(path)
    (result,) = segmenter.iter_detect([path])
    check_masks(result, truth)


def test_masks_scale_back_from_a_reduced_decode_of_a_big_jpeg(segmenter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo, truth = shapes_photo(3200, 2400, seed=1)
    path = tmp_path / "big.jpg"
    photo.save(path, quality=95)
    (result,) = segmenter.iter_detect([path])  # decoded in JPEG draft mode at 1/4
    assert result.detections.masks.resolution[0] <= 640  # kept at the network's resolution
    check_masks(result, truth)


def test_letterbox_padding_is_cut_off_for_tall_photos(segmenter) -> None:  # type: ignore[no-untyped-def]
    photo, truth = shapes_photo(500, 900, seed=2)
    dets = segmenter.detect_image(photo)
    assert dets.masks is not None
    for index, name in enumerate(dets.class_names):
        assert mask_iou(dets.masks.mask(index), truth[name]) >= 0.8


def test_a_class_filter_keeps_the_masks_of_the_objects_it_keeps(segmenter) -> None:  # type: ignore[no-untyped-def]
    photo, truth = shapes_photo(600, 400)
    dets = segmenter.detect_image(photo, classes=["dog"])
    assert dets.class_names == ["dog"]
    assert dets.masks is not None and mask_iou(dets.masks.mask(0), truth["dog"]) >= 0.8


# Random-weight Mask R-CNN and YOLO-seg through the registry ----------------------------------------


@pytest.fixture(scope="module")
def random_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A PIXELSIFT_HOME holding random weights for maskrcnn_resnet50_fpn and yolov8n-seg (`models add`)."""
    import torch
    from safetensors.torch import save_file

    from pixelsift.models.registry import get_model_spec

    with pixelsift_home(tmp_path_factory.mktemp("seg-home")) as home:
        for name in ("maskrcnn_resnet50_fpn", "yolov8n-seg"):
            torch.manual_seed(0)
            network = get_model_spec(name).build()
            if name.startswith("yolo"):  # every anchor sees a car, so YOLO reports objects
                with torch.no_grad():
                    for branch in network.model[-1].cv3:
                        branch[-1].bias.fill_(-12.0)
                        branch[-1].bias[2] = 4.0
            path = home / f"{name}.safetensors"
            save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
            assert main(["models", "add", name, str(path)]) == 0
        yield home


@pytest.mark.parametrize("name", ["yolov8n-seg", "maskrcnn_resnet50_fpn"])
def test_random_weight_segmenters_build_and_run_with_the_right_shapes(random_home: Path, name: str) -> None:
    photo = Image.new("RGB", (320, 240), (120, 100, 90))
    photo.paste((200, 30, 30), (60, 40, 200, 180))
    segmenter = load_segmenter(name, conf=0.01)
    dets = segmenter.detect_image(photo)
    assert len(dets) > 0 and dets.masks is not None
    assert len(dets.masks) == len(dets)
    assert dets.masks.size == (320, 240)
    assert dets.masks.data.dtype == bool and dets.masks.data.ndim == 3
    assert dets.masks.full().shape == (len(dets), 240, 320)
    assert all(0.0 <= a <= 1.0 for a in dets.areas())
    # a mask never leaves its box by more than the resampling's pixel
    for index, mask in enumerate(dets.masks.iter_full()):
        ys, xs = np.nonzero(mask)
        if len(xs):
            x1, y1, x2, y2 = dets.boxes[index]
            assert xs.min() >= x1 - 2 and xs.max() <= x2 + 2 and ys.min() >= y1 - 2 and ys.max() <= y2 + 2


def test_mask_rcnn_masks_are_torchvisions_own(random_home: Path) -> None:
    """pixelsift pastes only the kept objects' masks, at the size the network saw the photo: on a photo
    the network does not resize, that must be exactly what torchvision's own forward returns."""
    import torch

    # fp32 like torchvision's own forward below (auto would pick bf16 on a CPU with AMX)
    segmenter = load_segmenter("maskrcnn_resnet50_fpn", conf=0.05, iou=1.0, precision="fp32")
    network = segmenter.runner.network.net  # torchvision's MaskRCNN inside pixelsift's output adapter
    network.transform.min_size = (400,)  # a smaller photo the network keeps at its size: a faster test
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (400, 500, 3), dtype=np.uint8))
    ours = segmenter.detect_image(photo)
    with torch.no_grad():
        (theirs,) = network([segmenter.transform(photo)])
    assert len(ours) > 0 and ours.masks is not None
    their_boxes = theirs["boxes"].numpy()
    for index in range(len(ours)):
        match = int(np.abs(their_boxes - ours.boxes[index]).sum(axis=1).argmin())
        assert np.allclose(their_boxes[match], ours.boxes[index], atol=1e-3)
        assert (ours.masks.data[index] == (theirs["masks"][match, 0].numpy() > 0.5)).all()


def test_yolo_masks_are_ultralytics_own() -> None:
    import torch
    from ultralytics.utils import ops

    from pixelsift.detect.backends.yolo import assemble_masks

    rng = np.random.default_rng(0)
    protos = rng.normal(size=(32, 96, 160)).astype(np.float32)
    coefficients = rng.normal(size=(40, 32)).astype(np.float32)
    corners = rng.uniform(0, 600, size=(40, 2, 2)).astype(np.float32)
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    ours = assemble_masks(protos, coefficients, boxes, (384, 640))
    theirs = ops.process_mask(
        torch.from_numpy(protos),
        torch.from_numpy(coefficients),
        torch.from_numpy(boxes),
        (384, 640),
        upsample=True,
    )
    assert (ours == theirs.numpy().astype(bool)).all()


def test_the_public_api_gives_masks_and_a_dataframe_with_areas(random_home: Path, tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), (10, 200, 10)).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"not a photo")
    results = list(pixelsift.segment(tmp_path, model="yolov8n-seg"))
    assert [Path(r.path).name for r in results] == ["a.png", "b.jpg"]
    assert results[1].error and not results[1].ok
    frame = results[0].detections.to_pandas()
    assert "area" in frame and len(frame) == len(results[0].detections.masks)


# The command -----------------------------------------------------------------------------------------


@pytest.fixture
def cli_segmenter(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`pixelsift segment` run in this process with the colour segmenter as the loaded model."""
    import pixelsift.detect as detect_package

    loaded = colour_segmenter()
    monkeypatch.setattr(detect_package, "load_segmenter", lambda *a, **k: loaded)
    return loaded


def photos(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    folder.mkdir()
    truths = {}
    for index, name in enumerate(["one.png", "two.png"]):
        photo, truth = shapes_photo(480 + 40 * index, 320, seed=index)
        photo.save(folder / name)
        truths[name] = truth
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")  # between the two
    return truths


def test_cli_json_masks_and_annotated_copies(cli_segmenter, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    truths = photos(tmp_path / "in")
    code = main(
        [
            "segment", str(tmp_path / "in"), "--format", "json",
            "--save", str(tmp_path / "drawn"), "--masks", str(tmp_path / "masks"),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1  # one input failed, the rest went on
    assert "broken.jpg" in captured.err and "Traceback" not in captured.err
    rows = json.loads(captured.out)
    assert [Path(r["path"]).name for r in rows] == ["broken.jpg", "one.png", "two.png"]
    for row in rows[1:]:
        truth = truths[Path(row["path"]).name]
        for obj in row["detections"]:
            decoded = rle_decode(obj["rle"])
            assert mask_iou(decoded, truth[obj["label"]]) >= 0.8
            assert obj["polygons"] and len(obj["polygons"][0]) >= 6
            assert obj["area"] == pytest.approx(truth[obj["label"]].mean(), abs=0.01)
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["one.png", "two.png"]
    written = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert written == ["one_01_dog.png", "one_02_car.png", "two_01_dog.png", "two_02_car.png"]
    dog = np.asarray(Image.open(tmp_path / "masks" / "one_01_dog.png")) > 0
    assert mask_iou(dog, truths["one.png"]["dog"]) >= 0.8


def test_cli_label_images_and_csv(cli_segmenter, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    truths = photos(tmp_path / "in")
    masks = tmp_path / "labels"
    code = main(["segment", str(tmp_path / "in" / "one.png"), "--masks", str(masks), "--mask-style", "label",
                 "--format", "csv"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split(",")[-3:] == ["area", "rle", "error"]
    labels = np.asarray(Image.open(masks / "one.png"))
    first = out[1].split(",")
    assert first[4] == "dog"  # object 1 in the output is pixel value 1
    assert mask_iou(labels == 1, truths["one.png"]["dog"]) >= 0.8
    assert mask_iou(labels == 2, truths["one.png"]["car"]) >= 0.8
    assert mask_iou(rle_decode({"size": [320, 480], "counts": first[11]}), truths["one.png"]["dog"]) >= 0.8


def test_cli_bad_usage_is_one_line_and_exit_code_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    (tmp_path / "file").write_text("x")
    assert main(["segment", str(tmp_path / "a.png"), "-m", "resnet18"]) == 2
    assert "pixelsift models --task segment" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "a.png"), "--masks", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert "--masks" in err and len(err.strip().splitlines()) == 1
    assert main(["index", str(tmp_path), "--segmenter", "resnet18", "--db", str(tmp_path / "i.db")]) == 2
    err = capsys.readouterr().err
    assert "--segmenter needs an instance segmenter" in err and not (tmp_path / "i.db").exists()


def test_without_weights_the_error_names_the_fetch_command(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PIXELSIFT_HOME", str(tmp_path / "empty-home"))
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    assert main(["segment", str(tmp_path / "a.png")]) != 0
    err = capsys.readouterr().err
    assert "pixelsift models fetch maskrcnn_resnet50_fpn_v2" in err
    assert len(err.strip().splitlines()) == 1


MEMORY = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from helpers import colour_segmenter
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
segmenter = colour_segmenter()
list(segmenter.iter_detect([sys.argv[2]]))[0].detections.to_list()  # warm: one small photo, all outputs
base = rss_mb()
(result,) = segmenter.iter_detect([sys.argv[3]])
objects = result.detections.to_list()  # RLE and polygons in the photo's 40 million pixels
labels = result.detections.masks.label_image()
masks = result.detections.masks
print(json.dumps({"base": base, "peak": rss_mb(), "objects": len(objects), "size": masks.size,
                  "resolution": masks.resolution, "labelled": int((labels > 0).sum())}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory read from Linux's rusage")
def test_a_40_megapixel_photo_stays_within_bounded_memory(tmp_path: Path) -> None:
    import subprocess
    import sys

    from PIL import ImageDraw

    from helpers import REPO

    big = Image.new("RGB", (8000, 5000), (120, 120, 120))
    draw = ImageDraw.Draw(big)
    draw.ellipse((1000, 1000, 3500, 3500), fill=(210, 40, 30))
    draw.polygon([(6000, 500), (7500, 2000), (6000, 3500), (4500, 2000)], fill=(30, 50, 200))
    big.save(tmp_path / "big.jpg", quality=90)
    del big, draw
    small, _ = shapes_photo(320, 240)
    small.save(tmp_path / "small.png")
    args = [str(REPO / "tests"), str(tmp_path / "small.png"), str(tmp_path / "big.jpg")]
    done = subprocess.run([sys.executable, "-c", MEMORY, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["objects"] == 2 and out["size"] == [8000, 5000]
    assert out["resolution"][0] <= 640  # masks kept at the network's resolution, not 40 MB each
    disc = np.pi * 1250**2
    assert out["labelled"] == pytest.approx(disc + 2 * 1500**2, rel=0.03)
    # 40 million pixels: one photo-sized mask at a time (40 MB) plus the label image (80 MB)
    assert out["peak"] - out["base"] < 400, out


def test_cli_video_frames_get_their_shapes_drawn_and_listed(cli_segmenter, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import cv2

    frames = [shapes_photo(320, 240, seed=s)[0] for s in range(4)]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for frame in frames:
        writer.write(np.ascontiguousarray(np.asarray(frame)[..., ::-1]))
    writer.release()
    out = tmp_path / "out"
    assert main(["segment", str(video), "--vid-stride", "2", "--save", str(out)]) == 0
    printed = capsys.readouterr()
    assert "1 dog, 1 car" in printed.out.splitlines()[0]
    records = [json.loads(line) for line in (out / "clip.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 2]
    _, truth = shapes_photo(320, 240)
    dog = next(d for d in records[0]["detections"] if d["label"] == "dog")
    assert mask_iou(rle_decode(dog["rle"]), truth["dog"]) >= 0.7  # through the video codec
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (240, 320, 3)
    ys, xs = np.nonzero(truth["car"])
    original = np.asarray(frames[0])[..., ::-1].astype(int)
    inside = (int(ys.mean()), int(xs.mean()))
    assert np.abs(first[inside].astype(int) - original[inside]).max() > 20  # the car is tinted


def test_a_segmenter_says_which_engine_and_precision_it_runs_on(segmenter) -> None:  # type: ignore[no-untyped-def]
    from pixelsift.batch.job import Worker

    assert segmenter.engine == "torch" and segmenter.precision in ("fp32", "bf16", "fp16")
    worker = Worker.__new__(Worker)  # what a batch job records for a loaded detector
    worker.model, worker.detector = None, segmenter
    assert worker.ran() == {"engine": "torch", "precision": segmenter.precision, "device": "cpu"}


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_yolo_seg_runs_through_the_engines_with_torchs_outputs_and_masks(
    random_home: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exported YOLO-seg runs on square uint8 batches (the graph scales them): its two outputs are
    torch's on the same pixels, and the whole path gives masks inside their boxes, in photo pixels."""
    import importlib.util

    import torch

    from pixelsift.detect.backends.yolo import engine_network
    from pixelsift.models.registry import get_model_spec

    if importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed")
    segmenter = load_segmenter("yolov8n-seg", conf=0.01, engine=engine, batch_size=2)
    assert segmenter.runner.engine == engine and segmenter.square and segmenter.batch_size == 2
    photo = Image.new("RGB", (320, 240), (120, 100, 90))
    photo.paste((200, 30, 30), (60, 40, 200, 180))
    pixels, _ = segmenter.prepare(photo, batched=False)
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 640, 640), "square, as exported"
    got = segmenter.runner(pixels[None])
    with torch.inference_mode():
        wanted = [t.numpy() for t in engine_network(get_model_spec("yolov8n-seg"))(
            torch.from_numpy(pixels[None]).float() / 255
        )]  # fmt: skip
    for ours, theirs in zip(got, wanted, strict=True):
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= 1e-3 * max(1.0, float(np.abs(theirs).max()))
    [dets, again] = segmenter.detect_images([photo, photo])  # a batch of two
    assert len(dets) > 0 and dets.masks is not None and dets.masks.size == (320, 240)
    assert len(again) == len(dets) and np.allclose(again.boxes, dets.boxes, atol=1e-3)
    boxes = dets.boxes
    assert boxes[:, [0, 2]].min() >= -1 and boxes[:, [0, 2]].max() <= 321
    assert boxes[:, [1, 3]].min() >= -1 and boxes[:, [1, 3]].max() <= 241


def test_engine_auto_runs_yolo_on_what_it_measured_and_remembers_it(
    random_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--engine auto` for a YOLO model: measured once per machine (the tuner is replaced here by a
    fixed measurement that finds ONNX Runtime fastest), then built on that engine, square and batched."""
    from pixelsift.runtime import tuning
    from pixelsift.runtime.tuning import Measurement

    calls: list[str] = []

    def fake_measure(options, build, check, cpus, **kw):  # type: ignore[no-untyped-def]
        calls.append("measured")
        assert check.shape[1:] == (3, 640, 640) and check.dtype == np.uint8, "the engines' input"
        return [
            Measurement("torch", "fp32", 2, 1, 10.0, 1.0),
            Measurement("onnxruntime", "fp32", 2, 1, 30.0, 1.0),
        ]

    monkeypatch.setattr(tuning, "measure", fake_measure)
    first = load_segmenter("yolov8n-seg", engine="auto")
    again = load_segmenter("yolov8n-seg", engine="auto")
    assert calls == ["measured"], "measured once, then remembered"
    for segmenter in (first, again):
        assert segmenter.runner.engine == "onnxruntime" and segmenter.square
        assert segmenter.thread_plan().streams == 2
    photo = Image.new("RGB", (320, 240), (120, 100, 90))
    assert first.detect_image(photo).masks is not None
    torch_one = load_segmenter("yolov8n-seg", engine="torch", imgsz=320)
    assert not torch_one.square and torch_one.runner.engine == "torch", "--engine torch: the rect letterbox"


def test_the_tuners_yolo_detections_are_the_best_class_per_anchor_after_nms() -> None:
    from pixelsift.models.families.yolo import yolo_detections

    def anchors(*rows: tuple[float, float, float, float, int, float]) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.array([r[:4] for r in rows], np.float32).T[None]  # (1, 4, anchors)
        classes = np.zeros((1, 80, len(rows)), np.float32)
        for i, (*_, class_id, score) in enumerate(rows):
            classes[0, class_id, i] = score
        return boxes, classes

    boxes, classes = anchors(
        (50, 50, 20, 20, 2, 0.9),  # a car
        (51, 50, 20, 20, 2, 0.8),  # the same car again: NMS drops it
        (51, 50, 20, 20, 0, 0.7),  # a person in the same place: another class, kept
        (200, 200, 10, 10, 2, 0.1),  # below the score
    )
    [(found_boxes, scores, ids)] = yolo_detections((boxes, classes))
    assert ids.tolist() == [2, 0] and scores.tolist() == pytest.approx([0.9, 0.7])
    assert found_boxes[0].tolist() == pytest.approx([40, 40, 60, 60])
    protos = np.zeros((1, 32, 160, 160), np.float32)  # a -seg model: (predictions + coefficients, protos)
    seg = np.concatenate([boxes, classes, np.zeros((1, 32, 4), np.float32)], axis=1)
    [(_, seg_scores, seg_ids)] = yolo_detections((seg, protos))
    assert seg_ids.tolist() == ids.tolist() and seg_scores.tolist() == pytest.approx(scores.tolist())
