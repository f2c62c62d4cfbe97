"""The smaller ways output went wrong: valid JSON whatever the numbers, one line per path whatever its
characters, nothing to do is an error, clear output formats, model names as people spell them,
class-agnostic NMS, short reprs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import write_image
from pixelsift.cli import main
from pixelsift.cli.output import printable, to_json
from pixelsift.core.boxes import nms
from pixelsift.errors import ModelFileError
from pixelsift.models.registry import get_model_spec


def test_json_output_has_no_nan() -> None:
    text = to_json({"score": float("nan"), "scores": [1.0, float("inf")], "arr": np.array([np.nan])})
    assert json.loads(text) == {"score": None, "scores": [1.0, None], "arr": [None]}


def test_a_model_file_with_nan_weights_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "set"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        for i in range(4):
            write_image(root / label / f"{i}.jpg", color=colour, seed=i)
    from pixelsift.transfer.modelfile import read_model_file, write_model_file
    from pixelsift.transfer.trained import load_trained
    from pixelsift.transfer.training import train

    path = train(root).model.save(tmp_path / "m.safetensors")
    metadata, tensors = read_model_file(path)
    forged = {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v for k, v in tensors.items()}
    write_model_file(path, metadata, forged)
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        load_trained(path)


def test_control_characters_are_escaped_in_every_line() -> None:
    assert printable("a\nb\x1b[31mc\td") == "a\\nb\\x1b[31mc\\td"
    assert printable("plain/été.jpg") == "plain/été.jpg"


def test_a_file_name_with_a_newline_stays_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = write_image(tmp_path / "two\nlines.jpg")
    bad = tmp_path / "bad\x1b[2J.jpg"
    bad.write_text("not an image")
    code = main(["classify", str(odd), str(bad), "-k", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "two\\nlines.jpg" in out and "two\nlines" not in out
    assert "\x1b" not in err and "bad\\x1b[2J.jpg" in err


def test_nothing_to_classify_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code = main(["classify", str(tmp_path / "empty")])
    _, err = capsys.readouterr()
    assert code == 1 and "no images found" in err


def test_an_unknown_embedding_format_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "a.jpg")
    code = main(["embed", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "x.xyz")])
    _, err = capsys.readouterr()
    assert code == 2 and "unknown output format '.xyz'" in err
    assert not list(tmp_path.glob("x.xyz*"))


@pytest.mark.parametrize(
    ("spelling", "name"),
    [("VGG16", "vgg16"), ("ResNet-50", "resnet50"), ("Efficientnet_Lite0", "efficientnet_lite0")],
)
def test_model_names_match_as_people_spell_them(spelling: str, name: str) -> None:
    assert get_model_spec(spelling).name == name


def test_an_unknown_model_suggests_whatever_the_case() -> None:
    from pixelsift.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="vgg16"):
        get_model_spec("VGG-17")


def test_agnostic_nms_keeps_one_box_per_object() -> None:
    boxes = np.array([[10, 10, 100, 100], [12, 11, 101, 99], [300, 300, 350, 360]], np.float32)
    scores = np.array([0.79, 0.6, 0.5], np.float32)
    classes = np.array([16, 19, 16])  # dog, cow, dog: two classes on one animal
    assert sorted(nms(boxes, scores, classes, 0.45, 300).tolist()) == [0, 1, 2]
    assert sorted(nms(boxes, scores, classes, 0.45, 300, agnostic=True).tolist()) == [0, 2]


def test_the_repr_of_an_evaluation_is_one_short_line() -> None:
    from pixelsift.transfer.evaluation import Evaluation

    n = 500
    evaluation = Evaluation(
        ["a", "b"], [f"/p/{i}.jpg" for i in range(n)], ["a"] * n, np.tile([[0.9, 0.1]], (n, 1))
    )
    text = repr(evaluation)
    assert len(text) < 120 and "accuracy=1.000" in text and "500 photos" in text


def test_detect_class_filters_are_understood_like_search_words() -> None:
    from pixelsift.detect.detector import Detector
    from pixelsift.errors import UsageError
    from pixelsift.models.categories import coco80

    spec = get_model_spec("ssd_mobilenet_v2_coco")
    detector = Detector(spec, coco80())
    assert detector.check_classes(["people"]) == {"person"}
    assert detector.check_classes(["dogs", "sofa"]) == {"dog", "couch"}
    assert {"dog", "cat", "horse", "bird"} <= detector.check_classes(["animal"])  # type: ignore[operator]
    with pytest.raises(UsageError, match="does not detect 'spaceship'"):
        detector.check_classes(["spaceship"])


def test_explain_save_on_a_file_and_a_flat_layer_are_one_line(samples: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]

    existing = tmp_path / "taken.png"
    existing.write_bytes(b"the user's file")
    assert main(["explain", str(samples / "coffee.png"), "--save", str(existing)]) == 2
    err = capsys.readouterr().err
    assert f"--save {existing}: exists and is not a folder" in err and "Traceback" not in err
    assert existing.read_bytes() == b"the user's file"
    assert main(["explain", str(samples / "coffee.png"), "--layer", "_fc"]) == 2
    err = capsys.readouterr().err
    assert "layer '_fc' gives [1, 1280], not a map over the image" in err and "'_conv_head'" in err
    assert "Traceback" not in err


def test_one_photo_per_class_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        write_image(tmp_path / "set" / label / "0.jpg", color=colour)
    assert main(["train", str(tmp_path / "set"), "-o", str(tmp_path / "m"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "too few photos to validate a model (blue: 1, red: 1)" in err


def test_batch_output_on_a_device_is_one_line(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "embed", str(samples / "chelsea.png"), "-o", "/dev/full", "-q"]) == 2
    assert "-o /dev/full: exists and is not a folder" in capsys.readouterr().err
