"""Class activation maps through pytorch-grad-cam (`pip install 'pixelsift[explain]'`).

`CamModel` wraps a network as image -> logits and finds the layer to look at: the record's `cam_layer`
when it names one, else the last convolutional stage (the last module whose output is a spatial map,
N x C x H x W with H, W > 1), or for a vision transformer its last token output (N x T x C, reshaped to
a grid). `heatmap` runs one method on one preprocessed image for one class and returns the map in [0, 1]
at the network's input size.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelsift.core.optional import optional_import
from pixelsift.errors import UsageError

# name -> pytorch-grad-cam class, and whether it needs gradients through the head
METHODS: dict[str, tuple[str, bool]] = {
    "gradcam": ("GradCAM", True),
    "gradcam++": ("GradCAMPlusPlus", True),
    "hirescam": ("HiResCAM", True),
    "xgradcam": ("XGradCAM", True),
    "layercam": ("LayerCAM", True),
    "eigencam": ("EigenCAM", False),
    "scorecam": ("ScoreCAM", False),
}
DEFAULT_METHOD = "gradcam"
# Methods too slow to run inside a web request (the server has one inference lock): why, for the refusal.
SLOW_METHODS = {
    "scorecam": "one forward pass per feature map (146 s and 3.3 GB for one photo on a 2-core CPU)",
}


def _grad_cam() -> Any:
    module = optional_import("pytorch_grad_cam", "grad-cam", "explain", "Explaining predictions")
    import pytorch_grad_cam.score_cam as score_cam

    # ScoreCAM draws its own tqdm bar per image on stderr; pixelsift's bar counts the photos instead.
    score_cam.tqdm = types.SimpleNamespace(tqdm=lambda iterable, **_: iterable)
    return module


@dataclass(frozen=True)
class Target:
    """The layer a map is taken from, and how its output becomes N x C x H x W."""

    name: str
    module: Any
    reshape: Callable[[Any], Any] | None  # tokens or channels-last -> channels-first


def _tokens_to_grid(tensor: Any) -> Any:
    """(N, T, C) transformer tokens -> (N, C, side, side), dropping a class token when there is one."""
    n, t, c = tensor.shape
    side = math.isqrt(t)
    if side * side != t:
        tensor, side = tensor[:, 1:, :], math.isqrt(t - 1)
    return tensor.reshape(n, side, side, c).permute(0, 3, 1, 2)


def find_target(body: Any, size: int, name: str | None = None) -> Target:
    """The layer to take maps from, in `body` (the features part of a split network): `name`, else the
    last spatial output (or a transformer's last token output, when it comes after)."""
    import torch

    modules = dict(body.named_modules())
    if name is not None and name not in modules:
        close = [m for m in modules if m and name in m][:5]
        hint = f"; layers with that name in them: {', '.join(close)}" if close else ""
        raise UsageError(f"no layer {name!r} in this network{hint}")
    seen: list[tuple[str, tuple[int, ...]]] = []  # (module, output shape), in the order outputs appear

    def recorder(module_name: str) -> Callable[..., None]:
        def record(_module: Any, _inputs: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                seen.append((module_name, tuple(out.shape)))

        return record

    hooks = [module.register_forward_hook(recorder(n)) for n, module in modules.items() if n]
    try:
        with torch.no_grad():
            body(torch.zeros(1, 3, size, size, device=next(body.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    shapes = dict(seen)
    if name is None:
        spatial = [i for i, (_, s) in enumerate(seen) if len(s) == 4 and _grid(s) is not None]
        tokens = [i for i, (_, s) in enumerate(seen) if len(s) == 3 and s[1] > 1 and _is_square_tokens(s[1])]
        if tokens and (not spatial or tokens[-1] > spatial[-1]):
            name = seen[tokens[-1]][0]
        elif spatial:
            name = seen[spatial[-1]][0]
        else:
            raise UsageError("this network has no spatial layer to take a class activation map from")
    shape = shapes.get(name, ())
    if not (len(shape) == 4 and _grid(shape) is not None) and not (
        len(shape) == 3 and shape[1] > 1 and _is_square_tokens(shape[1])
    ):
        spatial_names = [repr(n) for n, s in seen if len(s) == 4 and _grid(s) is not None]
        maps = ", ".join(spatial_names[-3:]) or "none"
        raise UsageError(
            f"layer {name!r} gives {list(shape) or 'no tensor'}, not a map over the image; a class "
            f"activation map needs a convolutional layer, such as {maps}"
        )
    return _target_for(name, modules[name], shape)


def _grid(shape: tuple[int, ...]) -> str | None:
    """ "nchw" or "nhwc" for a spatial map with both sides above 1, else None."""
    _, a, b, c = shape
    if b == c and b > 1:
        return "nchw"
    if a == b and a > 1:
        return "nhwc"
    return None


def _is_square_tokens(t: int) -> bool:
    return math.isqrt(t) ** 2 == t or math.isqrt(t - 1) ** 2 == t - 1


def _target_for(name: str, module: Any, shape: tuple[int, ...]) -> Target:
    if len(shape) == 3:
        return Target(name, module, _tokens_to_grid)
    if len(shape) == 4 and _grid(shape) == "nhwc":
        return Target(name, module, lambda t: t.permute(0, 3, 1, 2))
    return Target(name, module, None)


class CamModel:
    """A network as image -> logits (or probabilities), with the layer its maps come from."""

    def __init__(
        self, forward: Any, body: Any, input_size: int, layer: str | None = None, gradients: bool = True
    ):
        self.forward = forward  # an nn.Module: (N, 3, H, W) -> (N, classes)
        self.target = find_target(body, input_size, layer)
        # False: the head is no neural network (k-NN, a forest): only gradient-free methods work
        self.gradients = gradients

    def heatmap(self, pixels: np.ndarray, class_index: int, method: str = DEFAULT_METHOD) -> np.ndarray:
        """The map of `method` for class `class_index` on one preprocessed image: (3, H, W) -> (H, W),
        scaled to [0, 1]."""
        import torch

        if method not in METHODS:
            raise UsageError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        cls_name, needs_gradients = METHODS[method]
        if needs_gradients and not self.gradients:
            raise UsageError(
                f"{method} needs gradients, which this classifier (not a neural network layer) has none of: "
                "use --method scorecam or eigencam"
            )
        cam_module = _grad_cam()
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        from pixelsift.runtime.device import use_threads  # torch's, like everything in this method

        use_threads()
        device = next(self.forward.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))[None].to(device)
        cam_class = getattr(cam_module, cls_name)
        reshape = self.target.reshape
        if not needs_gradients and isinstance(self.target.module, torch.nn.modules.batchnorm._BatchNorm):
            # A batch norm's output is the activation before its ReLU (DenseNet's norm5, EfficientNet-Lite's
            # last bn): methods that weigh the maps themselves need them as the network goes on to use them.
            # (Gradient methods see the transform on their gradients too, so only these get it.)
            inner = reshape
            reshape = lambda t: torch.relu(inner(t) if inner else t)  # noqa: E731
        with cam_class(
            model=self.forward, target_layers=[self.target.module], reshape_transform=reshape
        ) as cam:
            if method == "scorecam":
                cam.batch_size = 64
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(class_index))])
        heat = np.nan_to_num(np.asarray(maps[0], dtype=np.float32), nan=0.0)
        top = float(heat.max())
        return heat / top if top > 0 else heat
