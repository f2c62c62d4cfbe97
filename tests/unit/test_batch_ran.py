"""What a batch job ran on, merged over its workers: a value they all agree on is kept; where nodes
chose differently (a GPU node and CPU nodes), every value seen is listed."""

from __future__ import annotations

from pixelsift.batch.job import Worker


def test_workers_that_agree_give_their_record() -> None:
    one = {"engine": "torch", "precision": "fp32", "device": "cpu"}
    assert Worker.merge_ran([one, dict(one)]) == one


def test_workers_that_differ_list_every_value_seen() -> None:
    cpu = {"engine": "onnxruntime", "precision": "fp32", "device": "cpu"}
    gpu = {"engine": "torch", "precision": "fp16", "device": "cuda:0"}
    assert Worker.merge_ran([cpu, gpu, cpu]) == {
        "engine": "onnxruntime, torch",
        "precision": "fp16, fp32",
        "device": "cpu, cuda:0",
    }


def test_no_worker_no_record_and_unknown_values_stay_unknown() -> None:
    assert Worker.merge_ran([]) is None
    assert Worker.merge_ran([{"engine": None, "device": "cpu"}]) == {"engine": None, "device": "cpu"}
