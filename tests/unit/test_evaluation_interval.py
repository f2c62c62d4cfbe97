"""The validation score's 95% interval (Wilson): how far a score measured on few photos may be off."""

from __future__ import annotations

import pytest

from pixelsift.transfer.evaluation import wilson_interval


def test_the_interval_matches_the_textbook_values_and_narrows_with_more_photos() -> None:
    assert wilson_interval(29, 30) == pytest.approx((0.833, 0.994), abs=0.001)
    assert wilson_interval(4, 4) == pytest.approx((0.510, 1.0), abs=0.001), "all 4 right says little"
    wide, narrow = wilson_interval(9, 10), wilson_interval(900, 1000)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5
    assert wilson_interval(0, 0) == (0.0, 1.0), "no photos: no knowledge"
