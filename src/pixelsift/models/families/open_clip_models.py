"""Text-image models (CLIP) through open_clip: photos and sentences in one vector space.

The records; `pixelsift.runtime.text_image` loads and runs them. Free-text photo search ("a dog
playing in snow") encodes each photo once with the image tower when it is indexed, and the query with
the text tower. Install `pixelsift[clip]` and fetch the weights once
(`pixelsift models fetch clip_vit_b32`); the weights are cached as safetensors like every other model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pixelsift.core.optional import optional_import
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import TextImageSpec, WeightsFile
from pixelsift.models.registry import register

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_TEXT_IMAGE = "clip_vit_b32"


def import_open_clip() -> Any:
    return optional_import("open_clip", "open_clip_torch", "clip", "free-text photo search")


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
) -> TextImageSpec:
    """The registry record of an open_clip architecture with pretrained weights `tag`."""

    def build() -> Any:
        # open_clip warns on the root logger that it built random weights; pixelsift loads them next.
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            return import_open_clip().create_model(arch, pretrained=None, **create_kwargs)
        finally:
            logging.disable(previous)

    def download(path: Path) -> None:
        from safetensors.torch import save_file

        model = import_open_clip().create_model(arch, pretrained=tag, **create_kwargs)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))

    return TextImageSpec(
        name=name,
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
        upstream=arch,
        upstream_tag=tag,
    )


def default_spec() -> TextImageSpec:
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
