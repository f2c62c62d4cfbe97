"""Model records as plain JSON for listings: `pixelsift models --format json` and the web's /api/models."""

from __future__ import annotations

from typing import Any

from pixelsift.models import weights
from pixelsift.models.records import ClassifierSpec, ModelSpec


def model_record(spec: ModelSpec, defaults: dict[str, str], problem: str | None = None) -> dict[str, Any]:
    """The JSON record of one model (what `pixelsift models --format json` and `/api/models` give);
    `defaults`: task -> the model used when none is named; `problem`: why it cannot run on this machine
    (`detect.api.runnable_problem`), None when nothing stands in its way."""
    pre = getattr(spec, "preprocessing", None)  # detectors prepare their own inputs
    return {
        "name": spec.name,
        "task": spec.task,
        "source": spec.source,
        "description": spec.description,
        "licence": spec.licence,
        "input_size": spec.input_size,
        "preprocessing": pre.to_dict() if pre else None,
        "embed_dim": spec.embed_dim,
        "imagenet_top1": spec.imagenet_top1 if isinstance(spec, ClassifierSpec) else None,
        "num_classes": len(spec.categories) or None,
        "weights": weights.weights_status(spec) if spec.weights else "none",
        "weights_file": spec.weights.filename if spec.weights else None,
        "weights_url": spec.weights.url if spec.weights else None,
        "weights_path": str(_weights_path(spec)) if spec.weights else None,
        "default": defaults.get(spec.task) == spec.name,
        "usable": problem is None,
        "problem": problem,
        **spec.info(),
    }


def _weights_path(spec: ModelSpec) -> Any:
    return weights.packaged_path(spec) or weights.cache_path(spec)
