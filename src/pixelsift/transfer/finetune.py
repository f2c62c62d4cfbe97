"""Fine-tuning: a new classification head on a pretrained backbone, optionally with its last blocks.

>>> result = pixelsift.finetune("birds/", epochs=30, layers=2)      # doctest: +SKIP
>>> result.valid_score, result.model.save("birds-ft.safetensors")   # doctest: +SKIP

Two stages, both with early stopping on the validation loss (the best epoch is kept):

1. **Head** (always): a linear layer, or hidden layer + ReLU + dropout + linear, on the frozen
   backbone's L2-normalised features. The backbone runs once per photo, not once per epoch: clean
   features come from the feature cache, and `augment_views` augmented copies of each training photo
   (random resized crop, mirror, brightness / contrast / colour) are computed once; an epoch is one
   pass over all of them. On two CPU cores an epoch then takes milliseconds, not a network pass.
2. **Backbone blocks** (`layers=N`): the last N blocks are unfrozen and trained together with the head
   at `backbone_lr_factor` times the learning rate, on freshly augmented photos every epoch (this stage
   does run the network each epoch; BatchNorm statistics stay frozen, as small data sets need).

Ctrl-C (KeyboardInterrupt) stops training and returns the best model so far (`interrupted=True`).
The result saves in the same safe file format as `pixelsift train`: the head as a `DenseHead`, the
unfrozen blocks' weights as tensors beside it.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from typing_extensions import Unpack

from pixelsift.config import MAX_BATCH_SIZE, check_count, check_rate
from pixelsift.core.progress import progress_bar
from pixelsift.errors import UsageError
from pixelsift.features.ensemble import ensemble_members
from pixelsift.features.extractor import FeatureExtractor
from pixelsift.imaging.images import open_image
from pixelsift.imaging.pipeline import iter_batches
from pixelsift.models.preprocess import _RESAMPLE
from pixelsift.models.registry import DEFAULT_CLASSIFIER
from pixelsift.runtime.device import resolve_device, use_threads
from pixelsift.runtime.loaded import load_split_network
from pixelsift.runtime.options import RunKwargs, RunOptions
from pixelsift.transfer.backbone import state_digest, state_of, unfreeze_last_blocks
from pixelsift.transfer.data import HOLDOUT_FRACTION, LabelledFeatures, extract_labelled, labelled_splits
from pixelsift.transfer.domain import DomainGate
from pixelsift.transfer.heads import DenseHead
from pixelsift.transfer.trained import TrainedModel, training_photo_keys
from pixelsift.transfer.training import TrainResult, backbone_info, check_rejection

if TYPE_CHECKING:
    import torch
    from PIL import Image
    from torch import nn

    from pixelsift.models.preprocess import Preprocessing

log = logging.getLogger("pixelsift")

# Bounds of the fine-tuning options: far above any useful value, far below what exhausts a machine.
MAX_EPOCHS = 10_000
MAX_LAYERS = 1_000
MAX_HIDDEN = 65_536
MAX_AUGMENT_VIEWS = 100


@dataclass
class FinetuneOptions:
    """Fine-tuning settings; the defaults suit a few hundred photos on a laptop CPU."""

    epochs: int = 30  # head stage, at most (early stopping usually ends it sooner)
    layers: int = 0  # backbone blocks to unfreeze after the head stage (0: head only)
    backbone_epochs: int = 5  # epochs of the unfrozen stage, at most
    hidden: int = 0  # units of a hidden layer (0: a linear head)
    dropout: float = 0.2
    lr: float = 3e-3
    backbone_lr_factor: float = 0.1
    weight_decay: float = 1e-4
    augment_views: int = 2  # augmented copies of each training photo for the head stage
    patience: int = 5  # epochs without a better validation loss before stopping
    batch_size: int = 32
    seed: int = 0

    def check(self) -> None:
        """Every number within its bound before any work (`--hidden 100000000` asked for 512 GB,
        `--lr nan` passed `lr > 0` and failed inside AdamW)."""
        check_count("--epochs", self.epochs, 1, MAX_EPOCHS)
        check_count("--layer-epochs", self.backbone_epochs, 0, MAX_EPOCHS)
        check_count("--layers", self.layers, 0, MAX_LAYERS)
        check_count("--hidden", self.hidden, 0, MAX_HIDDEN)
        check_count("--augment-views", self.augment_views, 0, MAX_AUGMENT_VIEWS)
        check_count("--patience", self.patience, 1, MAX_EPOCHS)
        check_count("batch size", self.batch_size, 1, MAX_BATCH_SIZE)
        check_rate("--lr", self.lr, 10.0)
        check_rate("backbone lr factor", self.backbone_lr_factor, 10.0)
        if not (isinstance(self.dropout, int | float) and 0 <= self.dropout < 1):
            raise UsageError(f"--dropout must be from 0 up to (not including) 1, not {self.dropout!r}")
        if not (isinstance(self.weight_decay, int | float) and 0 <= self.weight_decay <= 1):
            raise UsageError(f"weight decay must be from 0 to 1, not {self.weight_decay!r}")


EpochCallback = Callable[[dict[str, Any]], None]


# -- augmentation ------------------------------------------------------------------------------------


def random_resized_crop(img: Image.Image, size: int, rng: random.Random, interpolation: str) -> Image.Image:
    """A random crop covering 50-100% of the photo's area (aspect 3:4 to 4:3), resized to size x size."""

    width, height = img.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(0.5, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            return img.resize((size, size), _RESAMPLE[interpolation], box=(left, top, left + w, top + h))
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return img.resize((size, size), _RESAMPLE[interpolation], box=(left, top, left + side, top + side))


def augmenting_decoder(preprocessing: Preprocessing, seed: int) -> Callable[[str], tuple[np.ndarray, Any]]:
    """A `decode(path)` for `iter_batches` that augments; the same (seed, path) gives the same pixels."""
    from PIL import ImageEnhance, ImageOps

    def decode(path: str) -> tuple[np.ndarray, Any]:
        rng = random.Random(f"{seed}:{path}")
        img = open_image(path, min_size=preprocessing.resize)
        size = img.size
        img = random_resized_crop(img, preprocessing.crop, rng, preprocessing.interpolation)
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhancer(img).enhance(rng.uniform(0.8, 1.2))
        return preprocessing.pixels(img), size

    return decode


# -- training ----------------------------------------------------------------------------------------


def build_head(n_features: int, n_classes: int, hidden: int, dropout: float) -> nn.Sequential:
    from torch import nn

    if hidden:
        return nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, n_classes))


def head_to_dense(head: nn.Sequential, n_features: int) -> DenseHead:
    """The torch head as a numpy `DenseHead` over L2-normalised features (the sqrt(dim) input scale the
    head was trained with is folded into its first layer)."""
    from torch import nn

    linears = [m for m in head if isinstance(m, nn.Linear)]
    weights = [m.weight.detach().cpu().numpy().astype(np.float32) for m in linears]
    biases = [m.bias.detach().cpu().numpy().astype(np.float32) for m in linears]
    weights[0] = weights[0] * np.float32(math.sqrt(n_features))
    return DenseHead(weights, biases, activation="relu", output="softmax")


def _unit_rms(x: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.normalize(x, dim=1) * math.sqrt(x.shape[1])


def _batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    import torch

    order = torch.randperm(n, generator=generator)
    for start in range(0, n, size):
        yield order[start : start + size]


def _evaluate_head(head: nn.Module, inputs: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    head.eval()
    with torch.no_grad():
        logits = head(inputs)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


class _EarlyStopping:
    """Remembers the state with the lowest validation loss; says when `patience` epochs brought none."""

    def __init__(self, patience: int):
        self.patience, self.best_loss, self.best_epoch, self.best_state = patience, math.inf, 0, None
        self.waited = 0

    def update(self, epoch: int, val_loss: float, state: Callable[[], Any]) -> bool:
        if val_loss < self.best_loss - 1e-6:
            self.best_loss, self.best_epoch, self.best_state, self.waited = val_loss, epoch, state(), 0
        else:
            self.waited += 1
        return self.waited >= self.patience


def finetune(
    root: str | os.PathLike[str],
    model: str = DEFAULT_CLASSIFIER,
    options: FinetuneOptions | None = None,
    holdout: float = HOLDOUT_FRACTION,
    cache: bool = True,
    progress: bool | None = False,
    on_epoch: EpochCallback | None = None,
    run_options: RunOptions | None = None,
    reject_test: str | os.PathLike[str] | None = None,
    **run: Unpack[RunKwargs],
) -> TrainResult:
    """Fine-tune a new head (and optionally the last backbone blocks) on a data-set folder.

    `on_epoch(record)` is called after every epoch with its losses and accuracies. Returns a
    `TrainResult` like `pixelsift.train` (classifier "finetune"); `interrupted` is True after Ctrl-C.
    `reject_test`: as in `pixelsift.train`.
    How the backbone runs: `run_options`, or the keywords device, precision, engine, threads,
    batch_size, workers.

    >>> r = finetune("birds/", FinetuneOptions(epochs=20, hidden=256))   # doctest: +SKIP
    """
    import torch

    run_options = RunOptions.of(run_options, **run)
    opts = options or FinetuneOptions()
    opts.check()
    if ensemble_members(model) is not None:
        raise UsageError(
            f"-m {model}: fine-tuning trains one backbone; an ensemble of backbones works with the "
            "scikit-learn classifiers (pixelsift train without --finetune)"
        )
    splits = labelled_splits(
        root,
        model,
        holdout,
        opts.seed,
        cache,
        progress,
        run_options,
    )
    data, extractor, failures = splits.data, splits.extractor, splits.failures
    assert isinstance(extractor, FeatureExtractor)  # ensembles are refused above
    train_set, valid_set, classes = splits.train, splits.valid, splits.classes
    index = {c: i for i, c in enumerate(classes)}
    y_train = torch.tensor([index[label] for label in train_set.labels])
    known = [i for i, label in enumerate(valid_set.labels) if label in index]
    y_valid = torch.tensor([index[valid_set.labels[i]] for i in known], dtype=torch.long)
    dim = train_set.raw.shape[1]
    use_threads(run_options.threads)

    history: list[dict[str, Any]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed)
        generator = torch.Generator().manual_seed(opts.seed)
        head = build_head(dim, len(classes), opts.hidden, opts.dropout)
        views = _feature_views(extractor, train_set, opts, progress)
        valid_inputs = _unit_rms(torch.from_numpy(valid_set.raw[known]))
        interrupted = _train_head(
            head, views, y_train, valid_inputs, y_valid, opts, generator, history, on_epoch, progress
        )
        unfrozen: list[str] = []
        state: dict[str, np.ndarray] | None = None
        if opts.layers and not interrupted:
            try:
                unfrozen, state = _train_blocks(
                    extractor,
                    head,
                    train_set,
                    valid_set,
                    known,
                    y_train,
                    y_valid,
                    opts,
                    generator,
                    history,
                    on_epoch,
                    progress,
                    resolve_device(run_options.device),
                )
            except _Interrupted as stop:
                interrupted, unfrozen, state = True, stop.unfrozen, stop.state

    info = backbone_info(extractor)
    if state:
        info.update(state_digest=state_digest(state), unfrozen=unfrozen)
    params = asdict(opts)
    trained = TrainedModel(
        extractor.spec.name,
        classes,
        head_to_dense(head, dim),
        classifier="finetune",
        params=params,
        backbone_info=info,
        backbone_state=state,
        training_photos=training_photo_keys([str(s.path) for s in data.train]),
    )
    if state:  # the backbone changed: evaluate on its own features, as `evaluate` and `predict` will
        own = trained.feature_extractor(cache=cache, run_options=run_options)
        train_set = extract_labelled(own, data.train, [], progress, "train features")
        valid_set = extract_labelled(own, data.valid, [], progress, "valid features")
    trained.domain = DomainGate.fit(train_set.raw, np.asarray(train_set.labels), valid_set.raw)
    result = TrainResult(
        trained,
        trained.evaluate_features(train_set),
        trained.evaluate_features(valid_set),
        data,
        failures,
        images_run=extractor.images_run,
        interrupted=interrupted,
        history=history,
    )
    if reject_test is not None:
        result.reject_test = check_rejection(trained, reject_test, cache, progress, run_options)
    trained.training = {**result.training_metadata(), "history": history, "interrupted": interrupted}
    return result


def _feature_views(
    extractor: FeatureExtractor, train_set: LabelledFeatures, opts: FinetuneOptions, progress: bool | None
) -> list[np.ndarray]:
    """The clean training features plus `augment_views` augmented copies (each row: one photo)."""
    views = [train_set.raw]
    assert extractor.spec.preprocessing is not None
    for view in range(opts.augment_views):
        decode = augmenting_decoder(extractor.spec.preprocessing, seed=opts.seed * 1000 + view + 1)
        rows = extractor.iter_features(
            train_set.paths,
            progress=progress,
            total=len(train_set),
            desc=f"augmented view {view + 1}",
            decode=decode,
        )
        augmented = np.stack(
            [
                row.vector if row.vector is not None else clean
                for row, clean in zip(rows, train_set.raw, strict=True)
            ]
        )
        views.append(augmented)
    return views


def _epoch_bar(total: int, desc: str, progress: bool | None) -> Any:

    return progress_bar(total=total, desc=desc, enabled=progress, unit="epoch")


def _end_epoch(
    history: list[dict[str, Any]],
    bar: Any,
    stopper: _EarlyStopping,
    snapshot: Callable[[], Any],
    on_epoch: EpochCallback | None,
    **values: Any,
) -> bool:
    """Record the epoch, let early stopping see it, then tell the caller; True: stop training."""
    history.append(values)
    bar.set_postfix({k: f"{v:.3f}" for k, v in values.items() if isinstance(v, float)})
    bar.update(1)
    log.info(
        "epoch %s",
        ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()),
    )
    stop = stopper.update(values["epoch"], values["val_loss"], snapshot)
    if on_epoch is not None:
        on_epoch(values)  # after the update: a Ctrl-C raised here keeps this epoch if it was the best
    return stop


def _train_head(
    head: nn.Sequential,
    views: list[np.ndarray],
    y: torch.Tensor,
    valid_inputs: torch.Tensor,
    y_valid: torch.Tensor,
    opts: FinetuneOptions,
    generator: torch.Generator,
    history: list[dict[str, Any]],
    on_epoch: EpochCallback | None,
    progress: bool | None,
) -> bool:
    """Stage 1: the head on cached (clean and augmented) features. Leaves `head` at its best epoch;
    returns True when Ctrl-C ended it (re-raised when no epoch was complete)."""
    import torch
    import torch.nn.functional as F

    # One epoch sees every view (clean and augmented) of every photo once.
    inputs = _unit_rms(torch.from_numpy(np.concatenate(views)))
    targets = y.repeat(len(views))
    optimizer = torch.optim.AdamW(head.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    stopper = _EarlyStopping(opts.patience)
    try:
        with _epoch_bar(opts.epochs, "fine-tune head", progress) as bar:
            for epoch in range(1, opts.epochs + 1):
                head.train()
                total_loss, correct = 0.0, 0
                for batch in _batches(len(targets), opts.batch_size, generator):
                    logits = head(inputs[batch])
                    loss = F.cross_entropy(logits, targets[batch])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total_loss += loss.item() * len(batch)
                    correct += int((logits.argmax(1) == targets[batch]).sum())
                loss_acc = (total_loss / len(targets), correct / len(targets))
                # Without validation photos, early stopping watches the training loss.
                val_loss, val_acc = _evaluate_head(head, valid_inputs, y_valid) if len(y_valid) else loss_acc
                if _end_epoch(
                    history,
                    bar,
                    stopper,
                    lambda: copy.deepcopy(head.state_dict()),
                    on_epoch,
                    stage="head",
                    epoch=epoch,
                    loss=loss_acc[0],
                    acc=loss_acc[1],
                    val_loss=val_loss,
                    val_acc=val_acc,
                ):
                    break
    except KeyboardInterrupt:
        if stopper.best_state is None:
            raise  # nothing worth keeping yet
        head.load_state_dict(stopper.best_state)
        return True
    if stopper.best_state is not None:
        head.load_state_dict(stopper.best_state)
    return False


class _Interrupted(Exception):
    def __init__(self, unfrozen: list[str], state: dict[str, np.ndarray] | None):
        self.unfrozen, self.state = unfrozen, state


def _train_blocks(
    extractor: FeatureExtractor,
    head: nn.Sequential,
    train_set: LabelledFeatures,
    valid_set: LabelledFeatures,
    known: list[int],
    y: torch.Tensor,
    y_valid: torch.Tensor,
    opts: FinetuneOptions,
    generator: torch.Generator,
    history: list[dict[str, Any]],
    on_epoch: EpochCallback | None,
    progress: bool | None,
    device: torch.device,
) -> tuple[list[str], dict[str, np.ndarray] | None]:
    """Stage 2: the last `opts.layers` blocks and the head, on augmented photos. Returns the unfrozen
    module names and their best weights (None when no epoch beat the head stage)."""
    import torch
    import torch.nn.functional as F

    spec = extractor.spec
    body = load_split_network(spec).body.to(device).eval()
    unfrozen = unfreeze_last_blocks(body, opts.layers)
    log.info("unfrozen backbone modules: %s", ", ".join(unfrozen))
    head.to(device)
    trainable = [p for p in body.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": head.parameters(), "lr": opts.lr},
            {"params": trainable, "lr": opts.lr * opts.backbone_lr_factor},
        ],
        weight_decay=opts.weight_decay,
    )
    # The head stage's best validation loss is the one to beat; if no epoch beats it, its head stays.
    head_before = copy.deepcopy(head.state_dict())
    stopper = _EarlyStopping(opts.patience)
    stopper.best_loss = min((h["val_loss"] for h in history if h["stage"] == "head"), default=math.inf)
    valid_paths = [valid_set.paths[i] for i in known]
    batch = min(opts.batch_size, 16)

    def features(paths: list[str], decode: Any) -> Iterator[tuple[list[int], torch.Tensor]]:
        for b in iter_batches(paths, decode, batch_size=batch, workers=extractor.run_options.workers):
            rows = [item.index for item in b.ok_items]
            pixels = np.asarray(b.pixels)  # one crop size: never a ragged list
            if pixels.dtype != np.float32:
                pixels = spec.preprocessing.normalise_batch(pixels)
            x = torch.from_numpy(pixels).to(device)
            yield rows, torch.flatten(body(x), 1)

    def snapshot() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return copy.deepcopy(head.state_dict()), state_of(body, unfrozen)

    try:
        with _epoch_bar(opts.backbone_epochs, "fine-tune blocks", progress) as bar:
            for epoch in range(1, opts.backbone_epochs + 1):
                head.train()
                total_loss, correct, seen = 0.0, 0, 0
                decode = augmenting_decoder(spec.preprocessing, seed=opts.seed * 1000 + 100 + epoch)
                order = torch.randperm(len(y), generator=generator).tolist()
                for rows, feats in features([train_set.paths[i] for i in order], decode):
                    target = y[[order[r] for r in rows]].to(device)
                    logits = head(_unit_rms(feats))
                    loss = F.cross_entropy(logits, target)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total_loss += loss.item() * len(rows)
                    correct += int((logits.argmax(1) == target).sum())
                    seen += len(rows)
                with torch.no_grad():
                    valid = [f for _, f in features(valid_paths, extractor.image_model.decode)]
                loss_acc = (total_loss / max(seen, 1), correct / max(seen, 1))
                val_loss, val_acc = (
                    _evaluate_head(head, _unit_rms(torch.cat(valid)), y_valid.to(device))
                    if valid
                    else loss_acc
                )
                if _end_epoch(
                    history,
                    bar,
                    stopper,
                    snapshot,
                    on_epoch,
                    stage="blocks",
                    epoch=epoch,
                    loss=loss_acc[0],
                    acc=loss_acc[1],
                    val_loss=val_loss,
                    val_acc=val_acc,
                ):
                    break
    except KeyboardInterrupt:
        raise _Interrupted(unfrozen, _restore(head, stopper, head_before)) from None
    return unfrozen, _restore(head, stopper, head_before)


def _restore(
    head: nn.Module, stopper: _EarlyStopping, head_before: dict[str, Any]
) -> dict[str, np.ndarray] | None:
    """Put the head back to the best epoch and return that epoch's backbone tensors; None when no epoch
    of the block stage beat the head stage (the head then gets its head-stage weights back)."""
    if stopper.best_state is None:
        head.load_state_dict(head_before)
        return None
    head_state, backbone_state = stopper.best_state
    head.load_state_dict(head_state)
    return backbone_state
