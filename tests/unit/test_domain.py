"""The gate that lets a trained model say "I do not know this photo": calibration and the model file."""

from __future__ import annotations

import numpy as np
import pytest

from pixelsift.errors import ModelFileError
from pixelsift.transfer.domain import MAX_EXAMPLES, DomainGate


def cluster(centre: np.ndarray, n: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return centre + spread * rng.normal(size=(n, centre.size))


def test_photos_near_the_training_photos_pass_and_far_ones_do_not() -> None:
    rng = np.random.default_rng(0)
    a, b, elsewhere = (rng.normal(size=64) for _ in range(3))
    train = np.concatenate([cluster(a, 40, 0.2, 1), cluster(b, 40, 0.2, 2)])
    labels = np.array([0] * 40 + [1] * 40)
    valid = np.concatenate([cluster(a, 30, 0.2, 3), cluster(b, 30, 0.2, 4)])
    gate = DomainGate.fit(train * 7.0, labels, valid * 3.0)  # raw features: any scale
    assert gate is not None and gate.valid_rejected is not None
    assert gate.valid_rejected <= 0.02, "the threshold lets ~99% of photos like the validation split in"
    assert gate.accepts(valid).mean() >= 0.98
    assert not gate.accepts(cluster(elsewhere, 50, 0.2, 5)).any(), "photos of something else are refused"


def test_without_validation_photos_the_training_photos_calibrate_it() -> None:
    rng = np.random.default_rng(1)
    centre = rng.normal(size=32)
    gate = DomainGate.fit(cluster(centre, 50, 0.3, 1), np.zeros(50), np.zeros((0, 32)))
    assert gate is not None and gate.valid_rejected is None and gate.threshold > 0
    assert gate.accepts(cluster(centre, 20, 0.3, 2)).mean() >= 0.9


def test_a_large_training_set_keeps_a_sample_from_every_class() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(size=(MAX_EXAMPLES + 1000, 8))
    labels = np.arange(len(train)) % 3
    gate = DomainGate.fit(train, labels, train[:10])
    assert gate is not None and len(gate.examples) <= MAX_EXAMPLES and gate.examples.dtype == np.float16


def test_it_survives_the_model_file_and_a_damaged_record_is_refused() -> None:
    rng = np.random.default_rng(3)
    gate = DomainGate.fit(rng.normal(size=(20, 16)), np.zeros(20), rng.normal(size=(5, 16)))
    assert gate is not None
    record, arrays = gate.to_metadata()
    again = DomainGate.from_metadata(record, arrays, "m.safetensors")
    assert again is not None and again.threshold == gate.threshold
    assert np.array_equal(again.examples, gate.examples)
    assert DomainGate.from_metadata(None, {}, "old.safetensors") is None, "an older model labels everything"
    with pytest.raises(ModelFileError, match="damaged"):
        DomainGate.from_metadata({"threshold": "x"}, arrays, "m.safetensors")
    with pytest.raises(ModelFileError, match="damaged"):
        DomainGate.from_metadata(record, {}, "m.safetensors")
