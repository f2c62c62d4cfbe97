"""A loaded text-image model (CLIP): photos and sentences encoded into one space by pixelsift's runner."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pixelsift.core.optional import is_installed
from pixelsift.models.families.open_clip_models import default_spec, import_open_clip
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import TextImageSpec
from pixelsift.models.registry import get_spec_of
from pixelsift.models.weights import MISSING, load_network, weights_status
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")


class TextImageModel:
    """A loaded CLIP: `encode_pixels` for photos, `encode_text` for queries, both L2-normalised."""

    def __init__(self, spec: TextImageSpec, network: Any, run_options: RunOptions | None = None):
        # torch only when a text-image model loads: `load_text_image_model("auto")` often finds none
        import torch.nn.functional as F
        from torch import nn

        from pixelsift.runtime.torch_runner import ModelRunner

        run_options = run_options or RunOptions()
        self.spec = spec
        self.name = spec.name
        self.preprocessing: Preprocessing = spec.preprocessing
        self.tokenizer = import_open_clip().get_tokenizer(spec.upstream)

        class ImageTower(nn.Module):
            def __init__(self, clip: Any):
                super().__init__()
                self.clip = clip

            def forward(self, x: Any) -> Any:
                return F.normalize(self.clip.encode_image(x).float(), dim=-1)

        class TextTower(ImageTower):
            def forward(self, x: Any) -> Any:
                return F.normalize(self.clip.encode_text(x).float(), dim=-1)

        network = network.eval()
        # Transformers have no BatchNorm to fold; the runner still picks device, precision and threads.
        self.image_runner = ModelRunner(ImageTower(network), run_options, fold_bn=False)
        self.text_runner = ModelRunner(TextTower(network), run_options, fold_bn=False, channels_last=False)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) pixels made by `self.preprocessing` -> (N, D) unit vectors."""
        return self.image_runner(np.ascontiguousarray(pixels, dtype=np.float32))[0]

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Sentences -> (N, D) unit vectors in the photos' space."""
        return self.text_runner(self.tokenizer(texts))[0]


def load_text_image_model(
    choice: str | None = "auto", run_options: RunOptions | None = None
) -> TextImageModel | None:
    """`auto`: the default text-image model when open_clip is installed and its weights are on this
    machine, else None (never downloads); `none`: None; a name: that model, or an error saying why not."""
    if choice in (None, "none"):
        return None
    if choice == "auto":
        if not is_installed("open_clip"):  # importing open_clip takes seconds: only if used
            log.info("no free-text search: open_clip is not installed (pip install 'pixelsift[clip]')")
            return None
        spec = default_spec()  # an unchanged library's update stays fast: no registry, no torch import
        if weights_status(spec) == MISSING:
            log.info(
                "no free-text search: the weights of %s are not on this machine (pixelsift models fetch %s)",
                spec.name,
                spec.name,
            )
            return None
        return TextImageModel(spec, load_network(spec, download=False), run_options)
    spec = get_spec_of(choice, TextImageSpec, needed_for="free-text search")
    import_open_clip()
    return TextImageModel(spec, load_network(spec), run_options)
