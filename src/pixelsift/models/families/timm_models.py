"""Any timm model as `timm/<name>`, with timm's own preprocessing config and hub download.

`pixelsift models fetch timm/<name>` lets timm download the pretrained weights (from the Hugging Face
hub, verified by timm / huggingface_hub) and stores them in the pixelsift cache as safetensors, so
later runs load them offline like every other model.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelsift.core.optional import optional_import
from pixelsift.errors import UnknownModelError
from pixelsift.models.preprocess import Preprocessing
from pixelsift.models.records import ClassifierSpec, WeightsFile
from pixelsift.models.registry import register_prefix

if TYPE_CHECKING:
    from pixelsift.models.network import SplitNetwork

PREFIX = "timm/"


def _timm() -> Any:
    return optional_import("timm", "timm", "timm", "timm models")


def _categories(timm: Any, cfg: dict[str, Any], num_classes: int) -> tuple[str, ...]:
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(cfg) if num_classes else None
    if subset:
        info = ImageNetInfo(subset)
        return tuple(info.index_to_description(i).split(",")[0].strip() for i in range(num_classes))
    return tuple(f"class_{i}" for i in range(num_classes))


def split_timm(net: Any) -> SplitNetwork:
    """timm's own API: `get_classifier()` is the head, `reset_classifier(0)` leaves pooled features."""
    from pixelsift.models.network import SplitNetwork  # imports torch, as timm itself does

    head = net.get_classifier()
    net.reset_classifier(0)
    return SplitNetwork(net, head)


def spec_for(name: str) -> ClassifierSpec:
    timm = _timm()
    model_name = name[len(PREFIX) :]
    if not timm.is_model(model_name):
        close = difflib.get_close_matches(model_name, timm.list_models(), n=3, cutoff=0.6)
        raise UnknownModelError(name, [PREFIX + c for c in close])
    net = timm.create_model(model_name, pretrained=False)
    cfg = dict(net.pretrained_cfg)
    from timm.data import resolve_data_config

    data_config = resolve_data_config({}, pretrained_cfg=cfg)
    hub = cfg.get("hf_hub_id")

    def download(path: Path) -> None:
        from safetensors.torch import save_file

        pretrained = _timm().create_model(model_name, pretrained=True)
        save_file({k: v.contiguous() for k, v in pretrained.state_dict().items()}, str(path))

    return ClassifierSpec(
        name=name,
        source="timm",
        description=f"timm {model_name}" + (f" ({cfg.get('tag')})" if cfg.get("tag") else ""),
        licence=str(cfg.get("license") or "see the model card"),
        preprocessing=Preprocessing.from_timm(data_config),
        weights=WeightsFile(
            filename=f"{model_name}.safetensors",
            url=f"https://huggingface.co/{hub}" if hub else cfg.get("url"),
        ),
        embed_dim=int(net.num_features),
        categories=_categories(timm, cfg, int(net.num_classes)),
        build=lambda: _timm().create_model(model_name, pretrained=False),
        download=download,
        split=split_timm,
        upstream=model_name,
    )


def register_models() -> None:
    register_prefix(PREFIX, spec_for)
