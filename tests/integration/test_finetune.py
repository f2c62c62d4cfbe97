"""Fine-tuning with the real offline backbone: head stage, unfrozen blocks, Ctrl-C, the saved file."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelsift.cli import main
from pixelsift.errors import UsageError
from pixelsift.imaging.datasets import read_dataset
from pixelsift.runtime.loaded import ImageModel
from pixelsift.transfer.backbone import backbone_blocks
from pixelsift.transfer.finetune import FinetuneOptions, augmenting_decoder, finetune
from pixelsift.transfer.modelfile import read_model_file
from pixelsift.transfer.trained import TrainedModel, load_trained

# `pixelsift.finetune` is the function; the module is reached through the import system.
finetune_module = importlib.import_module("pixelsift.transfer.finetune")

FAST = FinetuneOptions(epochs=12, augment_views=1, patience=4)


def valid_paths(root: Path) -> list[str]:
    return [str(s.path) for s in read_dataset(root).samples_of("valid")]


def test_augmentation_is_seeded_per_photo_and_keeps_the_input_size(shapes: Path) -> None:
    spec = ImageModel.load().spec
    assert spec.preprocessing is not None
    path = valid_paths(shapes)[0]
    a, size = augmenting_decoder(spec.preprocessing, seed=1)(path)
    b, _ = augmenting_decoder(spec.preprocessing, seed=1)(path)
    c, _ = augmenting_decoder(spec.preprocessing, seed=2)(path)
    assert a.shape == (3, 224, 224) and a.dtype == np.uint8 and size == (128, 128)  # the runner normalises
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_blocks_of_the_default_backbone() -> None:
    blocks = backbone_blocks(ImageModel.load().network.body)
    assert len(blocks) == 18  # stem, 16 MBConv blocks, head convolution
    assert blocks[0] == ["_conv_stem", "_bn0"] and blocks[-1] == ["_conv_head", "_bn1"]
    assert blocks[-2] == ["_blocks.15"]


@pytest.mark.slow
def test_head_fine_tuning_reaches_0_9_and_reloads_identically(shapes: Path, tmp_path: Path) -> None:
    records: list[dict[str, Any]] = []
    result = finetune(shapes, options=FAST, on_epoch=records.append)
    assert result.valid_score >= 0.9
    assert result.model.classifier == "finetune" and not result.model.backbone_modified
    assert records == result.history and 1 <= len(records) <= FAST.epochs
    assert {"stage", "epoch", "loss", "acc", "val_loss", "val_acc"} <= set(records[0])
    best = min(records, key=lambda r: r["val_loss"])
    assert result.valid_score == pytest.approx(best["val_acc"]), "the best epoch is the one kept"

    reloaded = load_trained(result.model.save(tmp_path / "ft.safetensors"))
    before = result.model.predict(valid_paths(shapes), top_k=4)
    after = reloaded.predict(valid_paths(shapes), top_k=4)
    assert [(r.labels, r.scores) for r in after] == [(r.labels, r.scores) for r in before]
    raw = np.random.default_rng(0).normal(size=(3, 1280)).astype(np.float32)
    np.testing.assert_array_equal(
        reloaded.predict_proba_from_features(raw), result.model.predict_proba_from_features(raw)
    )


@pytest.mark.slow
def test_unfreezing_the_last_block_trains_it_and_saves_its_weights(shapes: Path, tmp_path: Path) -> None:
    options = FinetuneOptions(epochs=4, augment_views=0, layers=1, backbone_epochs=2, patience=2)
    result = finetune(shapes, options=options)
    stages = [r["stage"] for r in result.history]
    assert "blocks" in stages and stages.index("blocks") == stages.count("head")
    head_best = min(r["val_loss"] for r in result.history if r["stage"] == "head")
    blocks_best = min(r["val_loss"] for r in result.history if r["stage"] == "blocks")
    # The block stage's weights are kept exactly when one of its epochs beat the head stage.
    assert result.model.backbone_modified == (blocks_best < head_best - 1e-6)
    path = result.model.save(tmp_path / "ft.safetensors")
    _, tensors = read_model_file(path)
    saved = sorted(k for k in tensors if k.startswith("backbone."))
    if result.model.backbone_modified:
        assert saved and all(k.startswith(("backbone._conv_head.", "backbone._bn1.")) for k in saved)
    else:
        assert saved == []
    reloaded = load_trained(path)
    before = result.model.predict(valid_paths(shapes), top_k=2)
    assert [(r.labels, r.scores) for r in reloaded.predict(valid_paths(shapes), top_k=2)] == [
        (r.labels, r.scores) for r in before
    ]


def test_fine_tuned_backbone_weights_are_used_after_reloading(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A saved model with backbone tensors predicts through those tensors, not the stock ones."""
    stock = ImageModel.load()
    state = stock.network.body.state_dict()
    changed = {k: v.numpy() * 1.5 for k, v in state.items() if k.startswith("_conv_head.")}
    base = TrainedModel(
        "efficientnet_lite0",
        ["a", "b"],
        _random_head(),
        classifier="finetune",
        backbone_info={"preprocessing": stock.preprocessing.to_dict()},
    )
    modified = TrainedModel(
        "efficientnet_lite0",
        ["a", "b"],
        base.head,
        classifier="finetune",
        backbone_info={"preprocessing": stock.preprocessing.to_dict(), "state_digest": "x"},
        backbone_state=changed,
    )
    paths = valid_paths(shapes)[:3]
    reloaded = load_trained(modified.save(tmp_path / "m.safetensors"))
    assert reloaded.backbone_modified
    ours = reloaded.predict(paths, top_k=2)
    assert [r.scores for r in ours] == [r.scores for r in modified.predict(paths, top_k=2)]
    assert [r.scores for r in ours] != [r.scores for r in base.predict(paths, top_k=2)]
    with pytest.raises(UsageError, match="fine-tuned layers of its backbone"):
        reloaded.predict_proba_from_features(np.zeros((1, 1280), np.float32))


def _random_head() -> Any:
    from pixelsift.transfer.heads import DenseHead

    rng = np.random.default_rng(0)
    return DenseHead([rng.normal(size=(2, 1280)) * 10], [np.zeros(2)])


def test_ctrl_c_keeps_the_best_epoch_so_far(shapes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def stop_after_three(record: dict[str, Any]) -> None:
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    result = finetune(shapes, options=FinetuneOptions(epochs=10, augment_views=0), on_epoch=stop_after_three)
    assert result.interrupted and len(result.history) == 3
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.valid_score == pytest.approx(best["val_acc"])

    def interrupt_during_the_first_epoch(*args: Any) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune_module._EarlyStopping, "update", interrupt_during_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):  # nothing to keep yet: the interrupt goes through
        finetune(shapes, options=FinetuneOptions(epochs=10, augment_views=0))


def test_cli_finetune_saves_on_ctrl_c_and_says_so(
    shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = finetune_module._EarlyStopping.update

    def interrupt_after_epoch_2(self: Any, epoch: int, val_loss: float, state: Any) -> bool:
        stop = real(self, epoch, val_loss, state)
        if epoch == 2:
            raise KeyboardInterrupt  # as if Ctrl-C came right after epoch 2 was done
        return stop

    monkeypatch.setattr(finetune_module._EarlyStopping, "update", interrupt_after_epoch_2)
    out = tmp_path / "ft.safetensors"
    code = main(
        ["train", str(shapes), "--finetune", "--augment-views", "0", "-o", str(out), "--format", "json"]
    )
    captured = capsys.readouterr()
    assert code == 130
    assert "interrupted; saved the best model so far (head epoch" in captured.err
    assert load_trained(out).training["interrupted"] is True
    assert '"interrupted": true' in captured.out


@pytest.mark.parametrize("engine", ["onnxruntime", "auto"])
def test_a_fine_tuned_backbone_runs_its_own_tensors_whatever_engine_is_asked(
    engine: str, samples: Path
) -> None:
    """The cached ONNX graph and the engine measurements are of the published weights: a backbone with
    fine-tuned tensors must not run them."""
    from pixelsift.runtime.options import RunOptions
    from pixelsift.transfer.backbone import load_finetuned_backbone

    published = ImageModel.load(engine="torch", precision="fp32", device="cpu")
    state = {
        k: v.numpy() * 1.5
        for k, v in published.network.body.state_dict().items()
        if k.startswith("_conv_head")
    }
    options = RunOptions(engine=engine, precision="fp32", device="cpu")
    tuned = load_finetuned_backbone("efficientnet_lite0", state, options)
    assert tuned.engine == "torch" and tuned.run_options == options
    pixels = published.decode(samples / "coffee.png")[0][None]
    assert not np.allclose(tuned.run(pixels)[0], published.run(pixels)[0], atol=1e-3)
