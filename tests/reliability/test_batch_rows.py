"""A batch job reads only regular files, each with a size bound, and a bad row never fails the job: a
FIFO, a device, a link loop, an unsupported scheme or a URI while offline is an error row."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from pixelsift.batch import read
from pixelsift.cli import main
from pixelsift.imaging.images import read_file


@pytest.fixture
def bad_rows(tmp_path: Path, samples: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(samples / "chelsea.png", folder / "cat.png")
    os.mkfifo(folder / "photo.jpg")  # opening it would wait for a writer forever
    (folder / "zero.jpg").symlink_to("/dev/zero")  # reading it would never end
    (folder / "loop.jpg").symlink_to("loop.jpg")
    return folder


EXPECTED = {
    "photo.jpg": "a named pipe (FIFO), not an image file",
    "zero.jpg": "a device, not an image file",
    "loop.jpg": "symbolic link loop",
}


@pytest.mark.parametrize("how", ["folder", "named"])
def test_fifos_devices_and_loops_are_error_rows(
    how: str, bad_rows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = [str(bad_rows)] if how == "folder" else [str(bad_rows / n) for n in ("cat.png", *EXPECTED)]
    started = time.monotonic()
    code = main(["batch", "classify", *inputs, "-o", str(tmp_path / "out"), "-q"])
    assert time.monotonic() - started < 300  # no hang on the FIFO, no endless read of /dev/zero
    assert code == 1 and "Traceback" not in capsys.readouterr().err
    rows = {
        Path(p).name: e for p, e in zip(*[read(tmp_path / "out")[c] for c in ("path", "error")], strict=True)
    }
    assert pd.isna(rows.pop("cat.png"))
    for name, words in EXPECTED.items():
        assert words in rows[name], (name, rows)


def test_a_named_fifo_or_device_is_named_as_what_it_is(
    bad_rows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["classify", str(bad_rows / "photo.jpg"), str(bad_rows / "zero.jpg"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "photo.jpg: a named pipe (FIFO), not an image file" in err
    assert "zero.jpg: a device, not an image file" in err
    assert "empty file" not in err


def test_a_file_over_the_size_bound_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixelsift.errors import PixelLimitError

    monkeypatch.setenv("PIXELSIFT_MAX_DECODE_MB", "1")
    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:
        fh.truncate(3 << 20)
    with pytest.raises(PixelLimitError, match="3 MB is over the 1 MB one photo may have"):
        read_file(str(big))


def test_bad_uris_are_error_rows_and_offline_means_no_network(
    tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"ftp://example.com/a.jpg\ns3://bucket/b.jpg\n{samples / 'chelsea.png'}\n")
    monkeypatch.setenv("PIXELSIFT_OFFLINE", "1")
    started = time.monotonic()
    code = main(
        ["batch", "classify", str(manifest), "http://example.com/c.jpg", "-o", str(tmp_path / "o"), "-q"]
    )
    assert time.monotonic() - started < 120  # offline: s3 was not tried for 10 s
    assert code == 1 and "Traceback" not in capsys.readouterr().err
    frame = read(tmp_path / "o")
    errors = dict(zip(frame["path"], frame["error"], strict=True))
    assert pd.isna(errors.pop(str(samples / "chelsea.png")))
    assert sorted(errors) == ["ftp://example.com/a.jpg", "http://example.com/c.jpg", "s3://bucket/b.jpg"]
    assert all("PIXELSIFT_OFFLINE is set" in e for e in errors.values())


def test_an_unknown_scheme_is_an_error_row_online(
    tmp_path: Path, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXELSIFT_OFFLINE", "0")  # the suite runs offline; ftp has no filesystem anyway
    code = main(
        [
            "batch",
            "classify",
            "ftp://example.com/x.jpg",
            str(samples / "chelsea.png"),
            "-o",
            str(tmp_path / "o"),
            "-q",
        ]
    )
    assert code == 1
    frame = read(tmp_path / "o")
    (error,) = [e for p, e in zip(frame["path"], frame["error"], strict=True) if p.startswith("ftp:")]
    assert "no filesystem for this URI here" in error


def _node(cpus: float, gpus: float = 0.0, alive: bool = True) -> dict[str, object]:
    return {"Alive": alive, "Resources": {"CPU": cpus, **({"GPU": gpus} if gpus else {})}}


@pytest.mark.parametrize(
    "workers,cpus,gpus,nodes,words",
    [
        (
            1,
            1.0,
            1.0,
            [_node(2)],
            "--gpus-per-worker 1: no node can give one worker that; the cluster has 0 GPUs",
        ),
        (1, 64.0, 0.0, [_node(2), _node(16)], "--cpus-per-worker 64: no node can give one worker that"),
        (3, 1.0, 0.0, [_node(2)], "--workers 3 x --cpus-per-worker 1 is more than the cluster has 2 CPUs"),
        (2, 8.0, 0.0, [_node(8), _node(8, alive=False)], "use --workers 1 or fewer"),
    ],
)
def test_a_request_the_cluster_can_never_meet_is_refused_before_the_job(
    workers: int, cpus: float, gpus: float, nodes: list[dict[str, object]], words: str
) -> None:
    from pixelsift.batch.run import EngineOptions, check_resources
    from pixelsift.errors import UsageError

    options = EngineOptions("ray", None, workers, cpus, gpus, 8, False)
    with pytest.raises(UsageError) as caught:
        check_resources(options, nodes)  # type: ignore[arg-type]
    assert words in str(caught.value)
    check_resources(EngineOptions("ray", None, 2, 1.0, 0.0, 8, False), [_node(2)])  # what fits passes


def test_a_bad_ray_address_is_one_line(
    tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "o"
    code = main(
        [
            "batch",
            "classify",
            str(samples / "chelsea.png"),
            "-o",
            str(out),
            "--engine",
            "ray",
            "--address",
            "not a url",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "--address not a url: no Ray cluster to join there" in err


def test_a_worker_larger_than_any_node_is_refused_by_the_cluster_check(
    tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--cpus-per-worker is checked against the cluster's nodes, not refused by this machine's thread bound
    (a cluster's nodes may be larger than the machine that submits the job)."""
    ray = pytest.importorskip("ray")
    args = ["batch", "classify", str(samples / "chelsea.png"), "-o", str(tmp_path / "o"), "--engine", "ray"]
    try:
        code = main([*args, "--cpus-per-worker", "64", "-q"])
    finally:
        ray.shutdown()
    err = capsys.readouterr().err
    assert code == 2 and "--cpus-per-worker 64: no node can give one worker that; the cluster has" in err
