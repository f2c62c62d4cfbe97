"""A classifier cut in two at its last linear layer: image -> features (penultimate) -> logits.

One forward pass gives both what classification needs (logits) and what transfer learning and
similarity search need (the penultimate vector), so indexing a photo runs the network once.
"""

from __future__ import annotations

import torch
from torch import nn


class SplitNetwork(nn.Module):
    """`forward(x)` returns `(features, logits)`; `body(x)` alone gives the features."""

    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body = body
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.flatten(self.body(x), 1)
        return features, self.head(features)


def drop_auxiliary_heads(net: nn.Module) -> None:
    """Inception / GoogLeNet train-time auxiliary classifiers are never used for inference."""
    for attr in ("AuxLogits", "aux1", "aux2"):
        if getattr(net, attr, None) is not None:
            setattr(net, attr, None)
    if hasattr(net, "aux_logits"):
        setattr(net, "aux_logits", False)  # noqa: B010 (a plain bool attribute, not a Module)


def split_at_last_linear(net: nn.Module) -> SplitNetwork:
    """Replace the last `nn.Linear` (in registration order) by Identity and return it as the head.

    This is the classic "remove the top layer" of feature extraction, done by structure rather than
    by a per-architecture table: VGG's classifier[6], ResNet's fc, DenseNet's classifier, ConvNeXt's
    classifier[2], ViT's heads.head ... all are the last Linear of their network.
    """
    drop_auxiliary_heads(net)
    last_name = None
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear):
            last_name = name
    if last_name is None:
        raise ValueError(f"{type(net).__name__} has no Linear layer to use as the classification head")
    parent = net
    *path, leaf = last_name.split(".")
    for part in path:
        parent = getattr(parent, part)
    head = getattr(parent, leaf)
    setattr(parent, leaf, nn.Identity())
    return SplitNetwork(net, head)
