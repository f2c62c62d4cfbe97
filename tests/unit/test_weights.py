"""The weights path end to end: cache, import, verify, load, and the errors a user sees. No network."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_image
from pixelsift.cli import main
from pixelsift.errors import WeightsInvalidError, WeightsMissingError
from pixelsift.models import weights
from pixelsift.models.network import split_at_last_linear
from pixelsift.models.registry import get_model_spec
from pixelsift.runtime.classify import classify


def save_random_resnet18(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    spec = get_model_spec("resnet18")
    assert spec.build is not None
    torch.manual_seed(seed)
    state = spec.build().state_dict()
    torch.save(state, path)
    return state


def test_missing_weights_offline_error_names_everything(home: Path) -> None:
    spec = get_model_spec("resnet18")
    assert weights.weights_status(spec) == "missing"
    with pytest.raises(WeightsMissingError) as info:
        weights.resolve(spec)
    message = str(info.value)
    assert "resnet18" in message
    assert "resnet18-f37072fd.pth" in message
    assert str(home / "weights" / "torchvision" / "resnet18-f37072fd.pth") in message
    assert "pixelsift models fetch resnet18" in message and "pixelsift models add resnet18" in message
    assert "PIXELSIFT_OFFLINE=1" in message
    assert "(downloads and verifies it)" in message, "torchvision publishes a hash prefix"


def test_the_fix_does_not_promise_a_check_where_no_hash_is_published(home: Path) -> None:
    spec = get_model_spec("yolov8n")
    assert spec.weights is not None and not (spec.weights.sha256 or spec.weights.hash_prefix)
    with pytest.raises(WeightsMissingError) as info:
        weights.resolve(spec)
    assert "pixelsift models fetch yolov8n" in str(info.value)
    assert "(downloads it; no hash is published)" in str(info.value) and "verifies" not in str(info.value)


def test_failed_download_gives_the_same_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Online but unreachable: the test network guard refuses the connection, as a dead network would."""
    monkeypatch.setenv("PIXELSIFT_OFFLINE", "0")
    spec = get_model_spec("resnet18")
    with pytest.raises(WeightsMissingError, match="the download failed") as info:
        weights.resolve(spec)
    assert "pixelsift models add resnet18" in str(info.value)
    assert not list((home / "weights" / "torchvision").glob("*.pth")), "no partial file is left behind"


def test_add_then_classify_uses_the_imported_weights(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "my-resnet18.pth"
    state = save_random_resnet18(source)
    before = source.read_bytes()
    assert main(["models", "add", "resnet18", str(source)]) == 0
    assert source.read_bytes() == before, "the user's file is never changed"
    spec = get_model_spec("resnet18")
    assert weights.weights_status(spec) == "cached"
    note = json.loads((weights.cache_path(spec).with_name("resnet18-f37072fd.pth.json")).read_text())
    assert note["matches_published_hash"] is False

    img = write_image(tmp_path / "x.jpg", size=(320, 240))
    result = classify([img], model="resnet18", top_k=3, precision="fp32")[0]
    # Recompute by hand from the saved state_dict: the classifier must have used exactly these weights.
    net = spec.build()  # type: ignore[misc]
    net.load_state_dict(state)
    net.eval()
    from pixelsift.imaging.images import open_image

    x = torch.from_numpy(spec.preprocessing(open_image(img)))[None]  # type: ignore[misc]
    with torch.inference_mode():
        probs = net(x).softmax(1)[0].numpy()
    best = np.argsort(-probs)[:3]
    assert result.labels == [spec.categories[i] for i in best]
    np.testing.assert_allclose(result.scores, probs[best], rtol=1e-4)


def test_wrong_shape_file_is_refused_and_not_cached(home: Path, tmp_path: Path) -> None:
    state = save_random_resnet18(tmp_path / "ok.pth")
    state["fc.weight"] = torch.zeros(10, 512)
    state["fc.bias"] = torch.zeros(10)
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(
        WeightsInvalidError, match=r"wrong shape \(e.g. fc.weight \(10, 512\) != \(1000, 512\)\)"
    ):
        weights.add(get_model_spec("resnet18"), tmp_path / "wrong.pth")
    assert weights.weights_status(get_model_spec("resnet18")) == "missing"


def test_missing_file_and_other_architecture_are_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "add", "resnet18", str(tmp_path / "nope.pth")]) == 2
    assert "no such file" in capsys.readouterr().err
    spec = get_model_spec("mobilenet_v3_small")
    torch.save(spec.build().state_dict(), tmp_path / "mnv3.pth")  # type: ignore[misc]
    assert main(["models", "add", "resnet18", str(tmp_path / "mnv3.pth")]) == 1
    err = capsys.readouterr().err
    assert "does not fit model 'resnet18'" in err and "Traceback" not in err


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch /tmp/pixelsift-pwned",))


def test_a_pickle_that_runs_code_is_refused_without_running_it(home: Path, tmp_path: Path) -> None:
    marker = Path("/tmp/pixelsift-pwned")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"fc.weight": _Exploit()}))
    with pytest.raises(WeightsInvalidError, match="not a plain weights file"):
        weights.add(get_model_spec("resnet18"), evil)
    assert not marker.exists()


def test_safetensors_files_import_too(home: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = save_random_resnet18(tmp_path / "x.pth")
    save_file(state, str(tmp_path / "r18.safetensors"))
    path, verified = weights.add(get_model_spec("resnet18"), tmp_path / "r18.safetensors")
    assert verified is False and path.is_file()
    net = weights.load_network(get_model_spec("resnet18"))
    assert torch.equal(net.state_dict()["fc.weight"], state["fc.weight"])


def test_packaged_weights_are_found_and_verified() -> None:
    spec = get_model_spec("efficientnet_lite0")
    path = weights.packaged_path(spec)
    assert path is not None and weights.weights_status(spec) == "packaged"
    assert weights.matches_published_hash(spec, weights.sha256_file(path)) is True


def test_densenet_old_style_keys_are_renamed(home: Path, tmp_path: Path) -> None:
    spec = get_model_spec("densenet121")
    state = spec.build().state_dict()  # type: ignore[misc]
    # The published file predates BatchNorm's num_batches_tracked and names layers "norm.1".
    old = {
        k.replace("norm1", "norm.1").replace("conv2", "conv.2"): v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }
    assert old.keys() != state.keys()
    torch.save(old, tmp_path / "old.pth")
    weights.add(spec, tmp_path / "old.pth")
    net = split_at_last_linear(weights.load_network(spec))
    assert net.head.in_features == 1024


def test_timm_model_add_then_classify_offline(home: Path, tmp_path: Path) -> None:
    """timm weights come through timm's hub when online; offline, an imported file is used the same way."""
    name = "timm/resnet18.a1_in1k"
    spec = get_model_spec(name)
    with pytest.raises(WeightsMissingError, match=r"pixelsift models fetch timm/resnet18\.a1_in1k"):
        weights.resolve(spec)
    torch.manual_seed(0)
    net = spec.build()  # type: ignore[misc]
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    weights.add(spec, tmp_path / "r18.pth")
    assert weights.cache_path(spec).parent.name == "timm"
    img = write_image(tmp_path / "x.jpg", size=(300, 200))
    (result,) = classify([img], model=name, top_k=1, precision="fp32")
    from pixelsift.imaging.images import open_image

    x = torch.from_numpy(spec.preprocessing(open_image(img)))[None]  # type: ignore[misc]
    with torch.inference_mode():
        expected = spec.categories[int(net.eval()(x).argmax())]
    assert result.labels == [expected]
