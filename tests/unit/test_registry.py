"""Registry self-tests: every registered model has complete metadata and builds (with random weights)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelsift.errors import UnknownModelError
from pixelsift.models import registry
from pixelsift.models.families.torchvision_classifiers import CLASSIFIERS
from pixelsift.models.network import split_at_last_linear
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec, ModelSpec
from pixelsift.models.registry import get_model_spec, list_models, register

REQUIRED = [
    "efficientnet_lite0",
    "vgg16",
    "densenet121",
    "resnet18",
    "resnet50",
    "alexnet",
    "inception_v3",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
]


def test_required_models_are_registered() -> None:
    names = {m.name for m in list_models()}
    assert set(REQUIRED) <= names


@pytest.mark.parametrize("spec", list_models(task="classify"), ids=lambda s: s.name)
def test_every_classifier_record_is_complete(spec: ModelSpec) -> None:
    assert spec.description and spec.licence and spec.source
    assert spec.preprocessing is not None and spec.input_size == spec.preprocessing.crop
    assert spec.weights is not None and spec.weights.filename
    assert spec.weights.url or spec.weights.package, "a record must say where its weights come from"
    assert spec.embed_dim and spec.embed_dim > 0
    assert spec.imagenet_top1 and 50 < spec.imagenet_top1 < 100
    assert len(spec.categories) == 1000 and len(set(spec.categories)) >= 998
    assert spec.build is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite0", *CLASSIFIERS], ids=str)
def test_every_classifier_builds_takes_its_preprocessing_and_returns_its_categories(name: str) -> None:
    spec = get_model_spec(name)
    assert spec.build is not None and spec.preprocessing is not None
    torch.manual_seed(0)
    net = split_at_last_linear(spec.build()).eval()
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    x = torch.from_numpy(spec.preprocessing(img))[None]
    with torch.inference_mode():
        features, logits = net(x)
    assert features.shape == (1, spec.embed_dim), "embed_dim must be the penultimate width"
    assert logits.shape == (1, len(spec.categories)) == (1, 1000)


def test_duplicate_names_are_an_error() -> None:
    spec = get_model_spec("resnet18")
    with pytest.raises(ValueError, match="already registered"):
        register(spec)


def test_wildcards_and_task_filter() -> None:
    assert [m.name for m in list_models("resnet*")] == ["resnet18", "resnet34", "resnet50", "resnet101"]
    assert all(m.task == "classify" for m in list_models(task="classify"))
    assert list_models("no-such-*") == []


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_model_spec("resnet5")
    assert "resnet50" in str(info.value) and "pixelsift models" in str(info.value)


def test_preprocessing_comes_from_the_weights_record() -> None:
    """The seed resized VGG16 inputs to 299 px; the record says 256 -> 224, and inception says 342 -> 299."""
    assert (get_model_spec("vgg16").preprocessing.resize, get_model_spec("vgg16").input_size) == (256, 224)  # type: ignore[union-attr]
    assert get_model_spec("inception_v3").input_size == 299
    lite = get_model_spec("efficientnet_lite0").preprocessing
    assert lite is not None and lite.mean == (0.5, 0.5, 0.5) and lite.std == (0.5, 0.5, 0.5)


def test_timm_models_resolve_by_prefix_with_timm_preprocessing() -> None:
    spec = get_model_spec("timm/resnet18.a1_in1k")
    assert spec.source == "timm" and spec.embed_dim == 512
    assert spec.preprocessing is not None and spec.preprocessing.crop == 224
    assert len(spec.categories) == 1000 and spec.categories[281].startswith("tabby")
    assert "timm/resnet18.a1_in1k" not in {m.name for m in list_models()}  # on-demand, not listed
    with pytest.raises(UnknownModelError):
        get_model_spec("timm/definitely_not_a_model")


def test_dynamic_prefix_factories_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []

    def factory(name: str) -> ModelSpec:
        made.append(name)
        return ClassifierSpec(
            name=name, source="test", description="x", licence="MIT", preprocessing=Preprocessing(256, 224)
        )

    monkeypatch.setattr(registry, "_dynamic", [*registry._dynamic, ("fake/", factory)])
    assert get_model_spec("fake/one").source == "test"
    assert made == ["fake/one"]
    monkeypatch.delitem(registry._REGISTRY, "fake/one")


def test_packaged_class_lists_are_torchvisions() -> None:
    from torchvision.models._meta import _COCO_CATEGORIES, _IMAGENET_CATEGORIES

    from pixelsift.models.categories import coco91, imagenet_categories

    assert imagenet_categories() == tuple(_IMAGENET_CATEGORIES)
    assert coco91() == tuple(_COCO_CATEGORIES)


def test_the_default_model_runs_without_importing_torchvision(samples: Path) -> None:
    """torchvision costs ~2 s of every command's start on a small CPU; only its own models need it."""
    code = (
        "import sys\n"
        "from pixelsift.runtime.classify import classify\n"
        f"assert classify({str(samples / 'coffee.png')!r})[0].labels[0] == 'espresso'\n"
        "assert 'torchvision' not in sys.modules, 'the default model imported torchvision'\n"
        "from pixelsift.models.registry import get_model_spec\n"
        "assert get_model_spec('resnet18').source == 'torchvision'  # a miss registers the rest\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_listing_order_is_the_catalogs_whatever_was_looked_up_first() -> None:
    code = (
        "from pixelsift.models.registry import get_model_spec, list_models\n"
        "get_model_spec('yolov8n')  # registers the families without torchvision first\n"
        "print(' '.join(spec.name for spec in list_models()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    names = result.stdout.split()
    assert names[0] == "efficientnet_lite0", result.stderr
    assert names.index("vgg16") < names.index("ssd_mobilenet_v2_coco") < names.index("yolov8n")
    assert names.index("fasterrcnn_resnet50_fpn_v2") < names.index("yolov8n")
