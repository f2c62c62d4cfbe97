"""Detections and custom labels in the index, with stand-in detectors and trained models.

The stand-ins replace what pixelsift.detect and pixelsift.transfer publish (`load_detector` /
`default_detector_name` and `load_trained`), so these tests check the library's side of the contract:
what it calls, with which inputs, and what it stores and finds. tests/integration/test_library_real_labeler.py
does the same with a real trained model.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from helpers import write_image
from pixelsift import PhotoIndex
from pixelsift.detect.detections import Detections
from pixelsift.detect.detector import Detector
from pixelsift.errors import UsageError, WeightsMissingError
from pixelsift.library.store import blob_to_vector
from pixelsift.models import registry
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec, DetectorSpec, WeightsFile
from pixelsift.models.registry import get_model_spec
from pixelsift.runtime.loaded import ImageModel


class FakeDetector(Detector):
    """Sees a stop sign in red photos and a car in blue ones, in the top-left quarter of what it is
    given. A real `Detector` with a made-up network: the library's photos go through the detector's
    own preparation and scaling back to the photo's pixels."""

    def __init__(self) -> None:
        spec = DetectorSpec(
            name="fake-ssd", source="test", description="colours", licence="-", backend="torch_ssd", imgsz=64
        )
        super().__init__(spec, ["background", "stop sign", "car"], conf=0.5, decode_size=64)
        self.seen: list[tuple[int, int]] = []  # the size of each image it was given

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        self.seen.append(image.size)
        return np.asarray(image, dtype=np.float32).transpose(2, 0, 1), None

    def infer(self, pixels: Any) -> list[np.ndarray]:
        return [np.asarray(p).mean(axis=(1, 2)) for p in pixels]  # mean red, green, blue

    def postprocess(self, raw: Any, meta: Any, size: tuple[int, int]) -> Detections:
        red, _, blue = raw
        ids = [1] if red > 150 else [2] if blue > 150 else []
        w, h = size
        boxes = np.array([[0, 0, w / 2, h / 2]] * len(ids), np.float32).reshape(-1, 4)
        return Detections(boxes, np.full(len(ids), 0.9), np.array(ids), [self.categories[i] for i in ids])


@pytest.fixture
def detector(monkeypatch: pytest.MonkeyPatch) -> FakeDetector:
    import pixelsift.detect

    fake = FakeDetector()

    def load_detector(model: str | None = None, run_options: Any = None, **kw: Any) -> Any:
        if model not in (None, fake.name):
            raise UsageError(f"unknown detector {model!r}")
        return fake

    monkeypatch.setattr(pixelsift.detect, "load_detector", load_detector)
    monkeypatch.setattr(pixelsift.detect, "default_detector_name", lambda: fake.name)
    ready = ([SimpleNamespace(name=fake.name)], {})  # what `auto` may load, best first
    monkeypatch.setattr(pixelsift.detect.api, "detector_readiness", lambda: ready)
    return fake


class FakeTrained:
    """A trained labeler: a fixed linear layer on the backbone's raw features."""

    backbone_modified = False
    domain = None  # like a model file from before the domain gate: it labels every photo

    def __init__(self, backbone: str, dim: int, classes: list[str]):
        self.backbone = backbone
        self.classes = classes
        self.weights = np.random.default_rng(7).normal(size=(dim, len(classes))).astype(np.float32)
        self.inputs: list[np.ndarray] = []

    def predict_proba_from_features(self, raw: np.ndarray) -> np.ndarray:
        self.inputs.append(np.array(raw))
        z = raw @ self.weights
        z = z - z.max(axis=1, keepdims=True)
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


@pytest.fixture
def labelers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, FakeTrained]:
    """Files `<name>.model` in tmp_path load as FakeTrained models registered here by name."""
    import pixelsift.transfer.trained

    made: dict[str, FakeTrained] = {}

    def load_trained(path: str | Path) -> FakeTrained:
        return made[Path(path).name.split(".")[0]]

    monkeypatch.setattr(pixelsift.transfer.trained, "load_trained", load_trained)
    return made


def colour_library(root: Path) -> None:
    write_image(root / "red1.jpg", size=(96, 64), color=(240, 20, 20), seed=1)
    write_image(root / "red2.png", size=(64, 64), color=(230, 40, 30), seed=2)
    write_image(root / "blue.jpg", size=(80, 60), color=(20, 30, 240), seed=3)
    write_image(root / "grey.jpg", size=(80, 60), color=(120, 120, 120), seed=4)


def test_detections_are_stored_in_full_resolution_pixels_and_searchable(
    tmp_path: Path, detector: FakeDetector
) -> None:
    root = tmp_path / "photos"
    colour_library(root)
    write_image(root / "big-red.jpg", size=(2400, 1600), color=(240, 10, 10), seed=5)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root)  # detector "auto": the default detector
    assert {r.relative_path for r in index.search("stop sign")} == {"red1.jpg", "red2.png", "big-red.jpg"}
    assert {r.relative_path for r in index.search("stop signs")} == {"red1.jpg", "red2.png", "big-red.jpg"}
    assert [r.relative_path for r in index.search("car")] == ["blue.jpg"]
    assert "blue.jpg" in {r.relative_path for r in index.search("vehicle")}, "a car is a vehicle (WordNet)"
    big_id = index.conn.execute("SELECT id FROM photos WHERE path = 'big-red.jpg'").fetchone()[0]
    big = index.photo(big_id)
    assert max(detector.seen) < (2400, 1600), "the detector got a draft-decoded (smaller) image"
    assert big["detections"][0]["label"] == "stop sign" and big["detector"] == "fake-ssd"
    assert big["detections"][0]["box"] == pytest.approx([0, 0, 1200, 800], rel=0.01), (
        "boxes in original pixels"
    )
    assert "stop sign" in index.search("stop sign")[0].labels


def test_a_detector_that_arrives_later_catches_up_on_older_photos(
    tmp_path: Path, detector: FakeDetector
) -> None:
    root = tmp_path / "photos"
    colour_library(root)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")
    assert index.search("stop sign") == [], "no detections yet"
    assert index.conn.execute("SELECT COUNT(*) FROM photos WHERE detector IS NULL").fetchone()[0] == 4
    report = index.update(root, detector="fake-ssd")
    assert report.added == 0 and report.annotated == {"searched for objects (fake-ssd)": 4}
    assert {r.relative_path for r in index.search("stop sign")} == {"red1.jpg", "red2.png"}
    assert index.conn.execute("SELECT COUNT(*) FROM photos WHERE detector = 'fake-ssd'").fetchone()[0] == 4
    # Remembered: the next run, without --detector, uses it for new photos and does not redo old ones.
    write_image(root / "red3.jpg", size=(64, 64), color=(250, 0, 0), seed=9)
    detector.seen.clear()
    later = index.update(root)
    assert later.added == 1 and len(detector.seen) == 1 and not later.annotated
    assert "red3.jpg" in {r.relative_path for r in index.search("stop sign")}


def test_with_no_detector_ready_auto_means_none_and_a_named_detector_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pixelsift.detect

    monkeypatch.setattr(pixelsift.detect, "default_detector_name", lambda: None)
    monkeypatch.setattr(pixelsift.detect.api, "detector_readiness", lambda: ([], {}))
    root = tmp_path / "photos"
    colour_library(root)
    index = PhotoIndex(tmp_path / "i.db")
    with caplog.at_level("INFO", logger="pixelsift"):
        report = index.update(root)
    assert report.added == 4 and index.conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 0
    assert sum("no object detector" in r.message for r in caplog.records) == 1
    with pytest.raises(WeightsMissingError, match="weights for model 'yolov8n' are missing"):
        index.update(root, detector="yolov8n")


def test_custom_labels_come_from_the_same_forward_pass(
    tmp_path: Path, labelers: dict[str, FakeTrained], monkeypatch: pytest.MonkeyPatch
) -> None:
    labelers["moods"] = FakeTrained("efficientnet_lite0", 1280, ["warm", "cool", "neutral"])
    (tmp_path / "moods.model").write_bytes(b"model file")
    root = tmp_path / "photos"
    colour_library(root)
    loads: list[str] = []
    real_load = ImageModel.load.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        ImageModel,
        "load",
        classmethod(lambda cls, name, *args, **kw: loads.append(name) or real_load(cls, name, *args, **kw)),
    )
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none", labelers=[tmp_path / "moods.model"])
    assert loads == ["efficientnet_lite0"], "one network, run once per photo"

    model = labelers["moods"]
    raw = np.concatenate(model.inputs)
    assert len(raw) == 4 and not np.allclose(np.linalg.norm(raw, axis=1), 1.0), "raw, unnormalised features"
    stored = dict(
        index.conn.execute(
            "SELECT p.path, e.vector FROM photos p "
            "JOIN embeddings e ON e.photo_id = p.id AND e.space = 'features'"
        )
    )
    probabilities = model.predict_proba_from_features(
        np.stack([blob_to_vector(stored[p]) for p in sorted(stored)])
    )
    for path, row in zip(sorted(stored), probabilities, strict=True):
        photo_id = index.conn.execute("SELECT id FROM photos WHERE path = ?", (path,)).fetchone()[0]
        custom = [lab for lab in index.photo(photo_id)["labels"] if lab["kind"] == "custom"]
        assert [c["label"] for c in custom] == [model.classes[i] for i in np.argsort(-row)]
        assert [c["score"] for c in custom] == pytest.approx(sorted(row, reverse=True), rel=1e-5)
        assert {c["source"] for c in custom} == {"moods"}
    best_warm = max(sorted(stored), key=lambda p: probabilities[sorted(stored).index(p)][0])
    assert index.search("warm", min_score=0.0)[0].relative_path == best_warm


def test_a_labeler_added_later_is_applied_from_stored_features_and_remembered(
    tmp_path: Path, labelers: dict[str, FakeTrained], monkeypatch: pytest.MonkeyPatch
) -> None:
    labelers["moods"] = FakeTrained("efficientnet_lite0", 1280, ["warm", "cool"])
    (tmp_path / "moods.model").write_bytes(b"model file")
    root = tmp_path / "photos"
    colour_library(root)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")

    import pixelsift.library.decoding as decoding

    read: list[str] = []
    real = decoding.read_file

    def reading(path: Any) -> Any:
        read.append(str(path))
        return real(path)

    with monkeypatch.context() as patch:
        patch.setattr(decoding, "read_file", reading)
        report = index.update(root, detector="none", labelers=[tmp_path / "moods.model"])
    assert report.annotated == {"labelled by moods": 4}
    assert read == [], "photos were read again"
    assert len(index.search("cool")) + len(index.search("warm")) >= 4
    write_image(root / "new.jpg", size=(64, 64), color=(200, 200, 20), seed=11)
    index.update(root, detector="none")  # no --labeler: the library remembers it
    new_id = index.conn.execute("SELECT id FROM photos WHERE path = 'new.jpg'").fetchone()[0]
    assert {lab["source"] for lab in index.photo(new_id)["labels"] if lab["kind"] == "custom"} == {"moods"}


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def test_a_labeler_on_another_backbone_gets_that_backbones_features(
    tmp_path: Path, labelers: dict[str, FakeTrained], monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    spec = ClassifierSpec(
        name="tiny_test_backbone",
        source="test",
        description="tiny random network",
        licence="MIT",
        preprocessing=Preprocessing(resize=40, crop=32),
        weights=WeightsFile(filename="tiny.pth", url="https://example.invalid/tiny.pth"),
        embed_dim=8,
        categories=get_model_spec("efficientnet_lite0").categories,
        build=TinyNet,
    )
    monkeypatch.setitem(registry._REGISTRY, spec.name, spec)
    torch.manual_seed(0)
    (home / "weights" / "test").mkdir(parents=True)
    torch.save(TinyNet().state_dict(), home / "weights" / "test" / "tiny.pth")
    labelers["tiny"] = FakeTrained(spec.name, 8, ["yes", "no"])
    (tmp_path / "tiny.model").write_bytes(b"x")
    root = tmp_path / "photos"
    colour_library(root)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")
    report = index.update(root, labelers=[tmp_path / "tiny.model"])  # older photos catch up
    assert report.annotated == {"labelled by tiny": 4}
    write_image(root / "red3.jpg", size=(64, 64), color=(250, 0, 0), seed=9)
    report = index.update(root)  # a new photo: labelled in the classifier's pass, from the same decode
    assert report.added == 1 and report.annotated == {}
    backbone = ImageModel.load(spec.name)
    for path in sorted(p for p in root.iterdir()):
        features, _ = backbone.run(backbone.decode(path)[0][None])
        expected = labelers["tiny"].predict_proba_from_features(features)[0]
        photo_id = index.conn.execute("SELECT id FROM photos WHERE path = ?", (path.name,)).fetchone()[0]
        stored = {
            lab["label"]: lab["score"] for lab in index.photo(photo_id)["labels"] if lab["kind"] == "custom"
        }
        assert stored == pytest.approx(dict(zip(["yes", "no"], expected, strict=True)), rel=1e-4)


class FakeSegmenter(Detector):
    """Sees a cat wherever a photo is not plain grey: its box is that region's extent, its mask the
    region (an ellipse inside the box: the object fills less of the photo than its box). A real
    `Detector` with a made-up network, as FakeDetector."""

    def __init__(self) -> None:
        spec = DetectorSpec(
            name="fake-seg", source="test", description="shapes", licence="-", backend="torch_ssd", imgsz=64
        )
        super().__init__(spec, ["background", "cat"], conf=0.5)

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        return np.asarray(image.convert("RGB"), dtype=np.int16), None

    def infer(self, pixels: Any) -> list[np.ndarray]:
        return list(pixels)

    def postprocess(self, raw: Any, meta: Any, size: tuple[int, int]) -> Detections:
        from pixelsift.detect import Masks

        pictured = np.abs(raw - 128).max(axis=2) > 3
        ys, xs = np.nonzero(pictured)
        if not len(xs):
            return Detections.empty()
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        yy, xx = np.mgrid[0 : raw.shape[0], 0 : raw.shape[1]]
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
        mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        return Detections([[x1, y1, x2, y2]], [0.9], [1], ["cat"], Masks(mask[None], size))


def test_a_segmenters_areas_are_stored_and_close_up_puts_the_photos_it_fills_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, samples: Path
) -> None:
    """`index --segmenter`: each object's own area is stored, and "close-up of a cat" ranks by it."""
    from PIL import Image

    import pixelsift.detect

    segmenter = FakeSegmenter()
    monkeypatch.setattr(pixelsift.detect, "load_detector", lambda model=None, *a, **k: segmenter)
    root = tmp_path / "photos"
    root.mkdir()
    cat = Image.open(samples / "chelsea.png").convert("RGB")
    # the same cat at three sizes on a grey page; names sort the other way round from the sizes
    for name, scale in (("a-small.png", 0.5), ("b-medium.png", 0.75), ("c-big.png", 1.0)):
        page = Image.new("RGB", (460, 310), (128, 128, 128))
        page.paste(cat.resize((round(451 * scale), round(300 * scale))), (4, 4))
        page.save(root / name)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector=segmenter.name)
    areas = dict(
        index.conn.execute("SELECT p.path, d.area FROM detections d JOIN photos p ON p.id = d.photo_id")
    )
    assert areas["c-big.png"] == pytest.approx(np.pi / 4 * 451 * 300 / (460 * 310), rel=0.03)
    info = index.photo(index.conn.execute("SELECT id FROM photos WHERE path = 'a-small.png'").fetchone()[0])
    assert info["detections"][0]["area"] == pytest.approx(areas["a-small.png"])
    close = index.search("close-up of a cat")
    assert [r.relative_path for r in close] == ["c-big.png", "b-medium.png", "a-small.png"]
    assert any("close-up" in note for note in close.notes)
    assert [r.relative_path for r in index.search("closeup cats")] == [
        "c-big.png",
        "b-medium.png",
        "a-small.png",
    ]
    # without "close-up" the same photos come by score, which here is not their size order: the
    # order above comes from the areas
    plain = [r.relative_path for r in index.search("cat")]
    assert sorted(plain) == sorted(r.relative_path for r in close) and plain != [
        r.relative_path for r in close
    ]


def test_a_result_shows_each_labelers_best_label(tmp_path: Path, labelers: dict[str, FakeTrained]) -> None:
    labelers["moods"] = FakeTrained("efficientnet_lite0", 1280, ["warm", "cool"])
    labelers["seasons"] = FakeTrained("efficientnet_lite0", 1280, ["summer", "winter"])
    models = [tmp_path / "moods.model", tmp_path / "seasons.model"]
    for model in models:
        model.write_bytes(b"model file")
    root = tmp_path / "photos"
    colour_library(root)
    with PhotoIndex(tmp_path / "i.db") as index:
        index.update(root, detector="none", labelers=models)
        results = index.search("warm or cool", min_score=0.0)
        assert len(results) == 4
        for result in results:
            labels = index.photo(result.id)["labels"]
            best = {
                source: max((lab for lab in labels if lab["source"] == source), key=lambda lab: lab["score"])
                for source in ("moods", "seasons")
            }
            assert {best["moods"]["label"], best["seasons"]["label"]} <= set(result.labels), result.labels
