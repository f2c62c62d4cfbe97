"""Fixtures for transfer-learning tests: a small synthetic data set, generated once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixelsift.imaging.datasets import make_shapes_dataset
from pixelsift.runtime.loaded import ImageModel


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes (coloured shapes on noisy backgrounds), 8 training and 4 validation photos each."""
    return make_shapes_dataset(
        tmp_path_factory.mktemp("data") / "shapes", train_per_class=8, valid_per_class=4, size=128
    )


@pytest.fixture
def network_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts what goes through the network: one entry per batch, the number of images in it."""
    calls: list[int] = []
    real = ImageModel.run

    def counting(self: ImageModel, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(pixels))
        return real(self, pixels)

    monkeypatch.setattr(ImageModel, "run", counting)
    return calls
