"""Free-text search wiring with a randomly initialised open_clip model (real weights come from a hub)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelsift import PhotoIndex
from pixelsift.imaging.images import open_image
from pixelsift.library.store import blob_to_vector
from pixelsift.models import registry, weights
from pixelsift.models.families.open_clip_models import text_image_spec
from pixelsift.runtime.text_image import load_text_image_model

open_clip = pytest.importorskip("open_clip")  # the `clip` extra, part of the test extras

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture
def tiny_clip(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tiny CLIP architecture with random weights saved in the pixelsift cache, registered by name."""
    config = tmp_path / "pixelsift-tiny-clip.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    spec = text_image_spec("tiny_clip", "pixelsift-tiny-clip", None, "tiny random CLIP", "MIT", 32, 32)
    monkeypatch.setitem(registry._REGISTRY, spec.name, spec)
    torch.manual_seed(0)
    from safetensors.torch import save_file

    path = weights.cache_path(spec)
    path.parent.mkdir(parents=True)
    assert spec.build is not None
    save_file({k: v.contiguous() for k, v in spec.build().state_dict().items()}, str(path))
    return spec.name


def test_free_text_queries_rank_by_text_image_cosine(tiny_clip: str, tmp_path: Path, samples: Path) -> None:
    root = tmp_path / "photos"
    shutil.copytree(samples, root)
    index = PhotoIndex(tmp_path / "i.db")
    report = index.update(root, detector="none", text_image=tiny_clip)
    assert report.added == 5
    model = load_text_image_model(tiny_clip)
    assert model is not None

    stored = {
        path: blob_to_vector(blob)
        for path, blob in index.conn.execute(
            "SELECT p.path, e.vector FROM photos p "
            "JOIN embeddings e ON e.photo_id = p.id AND e.space = 'clip'"
        )
    }
    assert sorted(stored) == sorted(p.name for p in root.iterdir() if p.suffix in (".png", ".jpg"))
    for name, vector in stored.items():  # each photo went through CLIP's own preprocessing and image tower
        pixels = model.preprocessing(open_image(root / name))
        assert np.allclose(vector, model.encode_pixels(pixels[None])[0], atol=1e-4)

    query = "a small boat on a quiet lake at dawn"
    results = index.search(query)
    assert results.how == "free text (tiny_clip)" and not results.message
    text = model.encode_text([query])[0]
    expected = sorted(stored, key=lambda name: -float(stored[name] @ text))
    assert [r.relative_path for r in results] == expected
    assert [r.score for r in results] == pytest.approx(
        sorted((float(v @ text) for v in stored.values()), reverse=True), abs=1e-4
    )
    cat = index.search("cat")
    assert cat.how.startswith("concepts"), "known words still use the labels"
    assert {e.source for e in cat[0].matched} >= {"classifier"}


def test_auto_uses_a_text_image_model_only_when_its_weights_are_here(
    tmp_path: Path, samples: Path, home: Path
) -> None:
    assert load_text_image_model("auto") is None  # open_clip installed, weights not on this machine
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(samples / "coffee.png", root)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")
    assert index.conn.execute("SELECT COUNT(*) FROM embeddings WHERE space = 'clip'").fetchone()[0] == 0
    from pixelsift.errors import WeightsMissingError

    with pytest.raises(WeightsMissingError, match="clip_vit_b32"):
        index.update(root, detector="none", text_image="clip_vit_b32")
