"""A Ray worker that dies on an input (out of memory, a crash in a decoder) does not stop the job
forever or fail it: after the bounded retries the input that kills its worker is found, written as an
error row, and every other input still gets its row.

The death is injected: a `sitecustomize` on the workers' PYTHONPATH makes `Worker.process` end its
process (os._exit) when its batch holds the named file, as an out-of-memory kill would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pixelsift
from helpers import write_image

KILLER = """
import os

_NAME = os.environ.get("PIXELSIFT_TEST_KILLER")
if _NAME:
    try:
        from pixelsift.batch import job as _job

        _real = _job.Worker.process

        def _process(self, paths):
            if any(os.path.basename(p) == _NAME for p in paths):
                os._exit(137)  # as the kernel's OOM killer would end it
            return _real(self, paths)

        _job.Worker.process = _process
    except Exception:
        pass
"""


@pytest.mark.timeout(900)
def test_an_input_that_kills_its_worker_becomes_an_error_row_and_the_job_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    ray.shutdown()  # a cluster started before would have workers without the injection
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(KILLER)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(inject), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("PIXELSIFT_TEST_KILLER", "g05.jpg")
    folder = tmp_path / "photos"
    for i in range(10):
        write_image(folder / f"g{i:02d}.jpg", size=(96, 72), seed=i)
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = pixelsift.batch.run(
            "classify", folder, out, engine="ray", shard_size=4, batch_size=2, cpus_per_worker=0.5
        )
    finally:
        ray.shutdown()
    assert (summary.processed, summary.failed, summary.shards_written) == (10, 1, 3)
    table = pixelsift.batch.read(out)
    assert len(table) == 10 and table["path"].is_unique, "every input exactly once"
    failed = table[table["error"].notna()]
    assert [Path(p).name for p in failed["path"]] == ["g05.jpg"]
    assert "the worker processing it died, 3 times" in failed["error"].iloc[0]
    assert table[table["error"].isna()]["labels"].map(len).min() == 5, "the others were classified"
