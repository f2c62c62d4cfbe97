from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from helpers import write_image
from pixelsift.runtime.classify import Classifier


@pytest.mark.parametrize(
    "run", [{"workers": 2}, {"streams": 2}], ids=["decode-threads", "streams-decoding-their-own"]
)
def test_memory_stays_flat_over_a_long_folder(tmp_path: Path, run: dict[str, int]) -> None:
    """Peak traced memory after 240 photos is no higher than after 60: the bounded queue (decode
    threads) or the bounded slots (streams) do their job."""
    for i in range(240):
        write_image(tmp_path / f"{i:04d}.jpg", size=(96, 72), seed=i)
    classifier = Classifier(batch_size=4, **run)  # type: ignore[arg-type]
    list(classifier.iter_classify(sorted(tmp_path.glob("*.jpg"))[:8]))  # warm-up allocations
    tracemalloc.start()
    try:
        peak_after_60 = 0
        count = 0
        for count, result in enumerate(classifier.iter_classify(tmp_path), start=1):
            assert result.ok
            if count == 60:
                peak_after_60 = tracemalloc.get_traced_memory()[1]
        peak_after_all = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 240
    # Growth with the folder would hold the 180 later photos' pixels (224 x 224 x 3 float32, 600 kB
    # each: 108 MB); the margin is one more batch in flight than at photo 60 (4 photos, 2.4 MB), which
    # a busy machine's scheduling can give the streams (seen once: 2.5 MB then 3.7 MB).
    one_batch = 4 * 224 * 224 * 3 * 4
    assert peak_after_all <= peak_after_60 * 1.25 + one_batch, (peak_after_60, peak_after_all)
