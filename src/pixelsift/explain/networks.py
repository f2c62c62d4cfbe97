"""The torch networks explanations run through: image -> class scores, with gradients where the head
has them. A registry classifier is loaded fresh (the fast runner folds batch norms and may run in
bf16, which gradients should not see); a trained model is its backbone (fine-tuned layers applied)
plus its own classifier."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pixelsift.core.arrays import softmax
from pixelsift.errors import UsageError
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import get_spec_of
from pixelsift.runtime.device import resolve_device
from pixelsift.runtime.loaded import load_split_network
from pixelsift.runtime.options import RunOptions
from pixelsift.transfer.backbone import finetuned_network
from pixelsift.transfer.heads import DenseHead


@dataclass
class Built:
    name: str
    categories: list[str]
    preprocessing: Preprocessing
    forward: nn.Module  # (N, 3, H, W) -> (N, classes): logits, or probabilities for a non-neural head
    body: nn.Module  # the features part, where the map's layer is
    probabilities: Callable[[np.ndarray], np.ndarray]  # one preprocessed image -> class probabilities
    cam_layer: str | None
    gradients: bool


class _Logits(nn.Module):
    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.body(x), 1))


class _DenseLogits(nn.Module):
    """A trained model's dense head in torch (same arithmetic as `DenseHead.predict_proba`, before its
    softmax), after the L2 normalisation training used. A linear SVM's Platt-calibrated head gives
    log-probabilities: differentiable, and their softmax is exactly `predict_proba`."""

    def __init__(self, head: DenseHead, normalize: bool):
        super().__init__()
        self.layers = nn.ModuleList()
        for w, b in zip(head.weights, head.biases, strict=True):
            layer = nn.Linear(w.shape[1], w.shape[0])
            layer.weight.data = torch.from_numpy(np.asarray(w, np.float32))
            layer.bias.data = torch.from_numpy(np.asarray(b, np.float32))
            self.layers.append(layer)
        self.activation = {"relu": torch.relu, "tanh": torch.tanh, "logistic": torch.sigmoid}.get(
            head.activation, lambda t: t
        )
        self.normalize, self.binary = normalize, head.output == "logistic"
        self.calibrated = head.output == "sigmoid_calibrated"
        if self.calibrated:
            assert head.calibration_a is not None and head.calibration_b is not None
            self.register_buffer("cal_a", torch.from_numpy(np.asarray(head.calibration_a, np.float32)))
            self.register_buffer("cal_b", torch.from_numpy(np.asarray(head.calibration_b, np.float32)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = nn.functional.normalize(features, dim=1) if self.normalize else features
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        if self.binary:  # one logit z: P(class 1) = sigmoid(z) = softmax([0, z])[1]
            h = torch.cat([torch.zeros_like(h), h], dim=1)
        elif self.calibrated:  # P_k = sigmoid(-(a_k d_k + b_k)), normalised over the classes
            z = -(self.get_buffer("cal_a") * h + self.get_buffer("cal_b"))
            if z.shape[1] == 1:  # two classes: P(class 1) and its complement
                return torch.cat([nn.functional.logsigmoid(-z), nn.functional.logsigmoid(z)], dim=1)
            log_p = nn.functional.logsigmoid(z)
            return log_p - torch.logsumexp(log_p, dim=1, keepdim=True)
        return h


class _NumpyHead(nn.Module):
    """A head without gradients (k-NN, forest): probabilities, for scorecam and eigencam."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray]):
        super().__init__()
        self.predict = predict
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the module a device

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        raw = features.detach().float().cpu().numpy()
        return torch.from_numpy(np.asarray(self.predict(raw), np.float32)).to(features.device)


def _probabilities(forward: nn.Module, softmax_out: bool) -> Callable[[np.ndarray], np.ndarray]:
    device = next(forward.parameters()).device

    def run(pixels: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = forward(torch.from_numpy(np.ascontiguousarray(pixels, np.float32))[None].to(device))
        scores = out[0].float().cpu().numpy()
        return softmax(scores) if softmax_out else scores

    return run


def registry_network(spec: ClassifierSpec, run_options: RunOptions) -> Built:
    split = load_split_network(spec)
    device = resolve_device(run_options.device)
    forward = _Logits(split.body, split.head).eval().to(device)
    return Built(
        spec.name,
        list(spec.categories),
        spec.preprocessing,
        forward,
        split.body,
        _probabilities(forward, True),
        spec.cam_layer,
        True,
    )


def trained_network(path: str | os.PathLike[str], run_options: RunOptions) -> Built:
    from pixelsift.transfer.trained import load_trained

    model = load_trained(path)
    if model.members is not None:
        raise UsageError(
            f"--trained {path}: this model stands on an ensemble of backbones ({model.backbone}); an "
            "explanation follows one network's gradients: explain a model trained on one backbone (-m NAME)"
        )
    spec = get_spec_of(model.backbone, ClassifierSpec)
    if model.backbone_modified:
        assert model.backbone_state is not None
        split = finetuned_network(spec, model.backbone_state)
    else:
        split = load_split_network(spec)
    head: Any
    gradients = isinstance(model.head, DenseHead)  # softmax, logistic and the calibrated linear SVM
    if gradients:
        head = _DenseLogits(model.head, model.normalize)  # type: ignore[arg-type]
    else:
        head = _NumpyHead(model.predict_proba_from_features if not model.backbone_modified else model._proba)
    device = resolve_device(run_options.device)
    forward = _Logits(split.body, head).eval().to(device)
    name = f"{os.path.basename(os.fspath(path))} ({model.backbone} + {model.classifier})"
    return Built(
        name,
        list(model.classes),
        spec.preprocessing,
        forward,
        split.body,
        _probabilities(forward, gradients),
        spec.cam_layer,
        gradients,
    )
