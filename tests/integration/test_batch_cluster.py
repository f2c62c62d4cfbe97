"""A batch job on a two-node Ray cluster (simulated on this machine with `ray.cluster_utils.Cluster`)
writes what the local engine writes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pixelsift
from conftest import SAMPLES


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield ray
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.timeout(300)
def test_two_nodes_write_what_one_process_writes(tmp_path: Path, two_nodes: Any) -> None:
    assert len([n for n in two_nodes.nodes() if n["Alive"]]) == 2
    photos = tmp_path / "photos"
    photos.mkdir()
    for sample in SAMPLES.iterdir():
        if sample.suffix in (".png", ".jpg"):
            shutil.copy(sample, photos / sample.name)
    local = pixelsift.batch.run("embed", photos, tmp_path / "local", shard_size=2)
    # one actor per node: each takes the node's one CPU
    remote = pixelsift.batch.run(
        "embed", photos, tmp_path / "ray", engine="ray", shard_size=2, workers=2, cpus_per_worker=1
    )
    assert (remote.processed, remote.shards) == (local.processed, local.shards) == (5, 3)
    a, b = pixelsift.batch.read(tmp_path / "local"), pixelsift.batch.read(tmp_path / "ray")
    assert list(a["path"]) == list(b["path"])
    for x, y in zip(a.itertuples(), b.itertuples(), strict=True):
        assert list(x.labels) == list(y.labels)
        assert np.allclose(np.asarray(x.vector), np.asarray(y.vector), atol=1e-6)
