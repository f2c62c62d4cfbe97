"""Text-image models (CLIP) through open_clip: photos and sentences in one vector space.

Free-text photo search ("a dog playing in snow") encodes each photo once with the image tower when it is
indexed, and the query with the text tower. Install `pixelsift[clip]` and fetch the weights once
(`pixelsift models fetch clip_vit_b32`); the weights are cached as safetensors like every other model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from .preprocess import Preprocessing
from .registry import ModelSpec, WeightsFile, get_model_spec, register

log = logging.getLogger("pixelsift")

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_TEXT_IMAGE = "clip_vit_b32"


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError:
        raise MissingDependencyError("open_clip_torch", "clip", "free-text photo search") from None
    return open_clip


def text_image_spec(
    name: str,
    arch: str,
    tag: str | None,
    description: str,
    licence: str,
    embed_dim: int,
    image_size: int = 224,
    hf_hub: str | None = None,
    **create_kwargs: Any,
) -> ModelSpec:
    """The registry record of an open_clip architecture with pretrained weights `tag`."""

    def build() -> Any:
        # open_clip warns on the root logger that it built random weights; pixelsift loads them next.
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            return _open_clip().create_model(arch, pretrained=None, **create_kwargs)
        finally:
            logging.disable(previous)

    def download(path: Path) -> None:
        from safetensors.torch import save_file

        model = _open_clip().create_model(arch, pretrained=tag, **create_kwargs)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))

    return ModelSpec(
        name=name,
        task="text-image",
        source="open_clip",
        description=description,
        licence=licence,
        preprocessing=Preprocessing(image_size, image_size, OPENAI_MEAN, OPENAI_STD, "bicubic"),
        weights=WeightsFile(
            filename=f"{arch}-{tag}.safetensors" if tag else f"{arch}.safetensors",
            url=f"https://huggingface.co/{hf_hub}" if hf_hub else None,
        ),
        embed_dim=embed_dim,
        build=build,
        download=download if tag else None,
        extra={"open_clip_arch": arch, "open_clip_tag": tag},
    )


def default_spec() -> ModelSpec:
    """The default text-image model's record (built without loading the registry, which imports torch)."""
    return text_image_spec(
        DEFAULT_TEXT_IMAGE,
        "ViT-B-32",
        "openai",
        "OpenAI CLIP ViT-B/32: photos and English text in one 512-d space (free-text search)",
        "MIT",
        embed_dim=512,
        hf_hub="timm/vit_base_patch32_clip_224.openai",
        force_quick_gelu=True,
    )


def register_models() -> None:
    register(default_spec())


class TextImageModel:
    """A loaded CLIP: `encode_pixels` for photos, `encode_text` for queries, both L2-normalised."""

    def __init__(
        self, spec: ModelSpec, network: Any, device: str | None = None, precision: str | None = None
    ):
        import torch.nn.functional as F
        from torch import nn

        from ..runner import ModelRunner

        assert spec.preprocessing is not None
        self.spec = spec
        self.name = spec.name
        self.preprocessing: Preprocessing = spec.preprocessing
        self.tokenizer = _open_clip().get_tokenizer(spec.extra["open_clip_arch"])

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
        self.image_runner = ModelRunner(
            ImageTower(network), device=device, precision=precision, fold_bn=False
        )
        self.text_runner = ModelRunner(
            TextTower(network), device=device, precision=precision, fold_bn=False, channels_last=False
        )

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) pixels made by `self.preprocessing` -> (N, D) unit vectors."""
        return self.image_runner(np.ascontiguousarray(pixels, dtype=np.float32))[0]

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Sentences -> (N, D) unit vectors in the photos' space."""
        return self.text_runner(self.tokenizer(texts))[0]


def load_text_image_model(
    choice: str | None = "auto", device: str | None = None, precision: str | None = None
) -> TextImageModel | None:
    """`auto`: the default text-image model when open_clip is installed and its weights are on this
    machine, else None (never downloads); `none`: None; a name: that model, or an error saying why not."""
    from .weights import MISSING, load_network, weights_status

    if choice in (None, "none"):
        return None
    if choice == "auto":
        import importlib.util

        if importlib.util.find_spec("open_clip") is None:  # importing open_clip takes seconds: only if used
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
        return TextImageModel(spec, load_network(spec, download=False), device, precision)
    spec = get_model_spec(choice)
    if spec.task != "text-image":
        from ..errors import UsageError

        raise UsageError(
            f"model {choice!r} is a {spec.task} model; free-text search needs a text-image model"
        )
    _open_clip()
    return TextImageModel(spec, load_network(spec), device, precision)
