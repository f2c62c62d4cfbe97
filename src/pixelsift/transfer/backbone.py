"""Backbone blocks of a pretrained network: which to unfreeze for fine-tuning, their saved tensors, and
loading a backbone with fine-tuned tensors applied."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from pixelsift.errors import ModelFileError, UsageError
from pixelsift.models.records import ClassifierSpec
from pixelsift.models.registry import get_spec_of
from pixelsift.runtime.engines import create_runner
from pixelsift.runtime.loaded import ImageModel, load_split_network
from pixelsift.runtime.options import RunOptions
from pixelsift.transfer.modelfile import content_digest

if TYPE_CHECKING:
    from torch import nn

    from pixelsift.models.network import SplitNetwork

NORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "SyncBatchNorm")


def backbone_blocks(body: nn.Module) -> list[list[str]]:
    """The backbone's blocks in order, each a list of module names (relative to `body`).

    Blocks are the children of the network and of its plain containers (Sequential, ModuleList,
    ModuleDict): EfficientNet's MBConv blocks, ResNet's residual blocks, a convolution with the
    normalisation layer right after it. Modules without parameters are left out.
    """
    from torch import nn  # torch only when a backbone is fine-tuned or loaded

    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    units: list[list[str]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if type(child) in containers:
                visit(full + ".", child)
            elif any(True for _ in child.parameters()):
                if type(child).__name__ in NORMS and units:
                    units[-1].append(full)  # a norm layer belongs to the block before it
                else:
                    units.append([full])

    visit("", body)
    return units


def unfreeze_last_blocks(body: nn.Module, count: int) -> list[str]:
    """Freeze `body`, then unfreeze its last `count` blocks; returns the unfrozen module names."""
    blocks = backbone_blocks(body)
    if count > len(blocks):
        raise UsageError(f"--layers {count}: this backbone has {len(blocks)} blocks")
    for p in body.parameters():
        p.requires_grad_(False)
    names = [name for block in blocks[len(blocks) - count :] for name in block]
    for name in names:
        for p in body.get_submodule(name).parameters():
            p.requires_grad_(True)
    return names


def state_of(body: nn.Module, module_names: list[str]) -> dict[str, np.ndarray]:
    state = body.state_dict()
    prefixes = tuple(f"{m}." for m in module_names)
    # BatchNorm's batch counter means nothing in eval mode.
    return {
        k: v.detach().cpu().numpy().copy()
        for k, v in state.items()
        if k.startswith(prefixes) and not k.endswith("num_batches_tracked")
    }


def state_digest(state: dict[str, np.ndarray]) -> str:
    return content_digest({}, state)


def load_finetuned_backbone(name: str, state: dict[str, np.ndarray], run_options: RunOptions) -> ImageModel:
    """The backbone `name` with fine-tuned tensors replacing its own, ready to run (`ImageModel`)."""
    spec = get_spec_of(name, ClassifierSpec)
    network = finetuned_network(spec, state)
    # The cached ONNX / OpenVINO graphs and the engine measurements are of the published weights: a
    # fine-tuned backbone runs in torch (its precision still chosen for this CPU).
    in_torch = dataclasses.replace(run_options, engine="torch")
    return ImageModel(spec, network, create_runner(spec, network, in_torch), run_options)


def finetuned_network(spec: ClassifierSpec, state: dict[str, np.ndarray]) -> SplitNetwork:
    """The backbone's split network with fine-tuned tensors replacing its own (checked to fit)."""
    import torch

    network = load_split_network(spec)
    own = network.body.state_dict()
    for key, value in state.items():
        if key not in own or tuple(own[key].shape) != tuple(value.shape):
            raise ModelFileError(
                f"the fine-tuned tensor {key!r} {value.shape} does not fit backbone {spec.name!r}"
            )
        own[key] = torch.from_numpy(np.array(value)).to(own[key].dtype)
    network.body.load_state_dict(own, strict=True)
    return network
