"""Batch jobs: the local engine against the in-process commands, bad files as rows, resume after an
interruption, manifests; the Ray engine (a real local cluster) against the local engine."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pixelsift
from conftest import SAMPLES
from helpers import write_image
from pixelsift.batch import job as batch_job
from pixelsift.cli import main
from pixelsift.errors import UsageError


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples, two generated photos, and a file that is not an image."""
    root = tmp_path_factory.mktemp("batch") / "photos"
    root.mkdir()
    for sample in SAMPLES.iterdir():
        if sample.suffix in (".png", ".jpg"):
            shutil.copy(sample, root / sample.name)
    write_image(root / "more" / "g0.jpg", size=(120, 90), seed=1)
    write_image(root / "more" / "g1.jpg", size=(90, 120), seed=2)
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")
    return root


def good(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "broken.jpg")


def test_classify_rows_match_pixelsift_classify_and_a_bad_file_is_a_row(photos: Path, tmp_path: Path) -> None:
    summary = pixelsift.batch.run("classify", photos, tmp_path / "out", top_k=3, shard_size=3)
    assert (summary.inputs, summary.processed, summary.failed, summary.shards) == (8, 8, 1, 3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_job.json",
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    table = pixelsift.batch.read(tmp_path / "out")
    assert list(table["path"]) == sorted(str(p) for p in photos.rglob("*") if p.is_file())
    broken = table[table["path"].str.endswith("broken.jpg")].iloc[0]
    assert broken["error"] and broken["labels"] is None and broken["size"] == 17
    expected = {r.path: r for r in pixelsift.classify(good(photos), top_k=3)}
    for row in table[table["error"].isna()].itertuples():
        reference = expected[row.path]
        assert list(row.labels) == reference.labels, row.path
        assert np.allclose(row.scores, reference.scores, atol=1e-6)
        assert row.sha256 == hashlib.sha256(Path(row.path).read_bytes()).hexdigest()
    chelsea = table[table["path"].str.endswith("chelsea.png")].iloc[0]
    assert (chelsea["width"], chelsea["height"]) == (451, 300), "the photo's own size"
    job = json.loads((tmp_path / "out" / "_job.json").read_text())
    assert job["task"] == "classify" and job["model"] == "efficientnet_lite0" and job["finished"]
    assert job["counts"] == {"inputs": 8, "processed": 8, "skipped": 0, "failed": 1, "shards": 3}
    assert job["weights_sha256"] and job["pixelsift_version"] == pixelsift.__version__


def test_embed_vectors_match_pixelsift_embed(photos: Path, tmp_path: Path) -> None:
    pixelsift.batch.run("embed", photos, tmp_path / "out")
    table = pixelsift.batch.read(tmp_path / "out")
    reference = pixelsift.embed(good(photos))
    by_path = dict(zip(reference.paths, reference.vectors, strict=True))
    rows = table[table["error"].isna()]
    assert len(rows) == len(by_path)
    for row in rows.itertuples():
        raw = np.asarray(row.vector, np.float32)  # raw features: pixelsift.embed's are L2-normalised
        assert np.allclose(raw / np.linalg.norm(raw), by_path[row.path], atol=1e-5), row.path
        assert len(row.labels) == 5, "the classifier's top-k from the same forward pass"
    assert table[table["error"].notna()]["vector"].isna().all()


@pytest.mark.skipif(pixelsift.detect.default_detector_name() is None, reason="needs a detector here")
def test_detect_rows_match_the_detector(photos: Path, tmp_path: Path) -> None:
    pixelsift.batch.run("detect", photos, tmp_path / "out", conf=0.3)
    table = pixelsift.batch.read(tmp_path / "out")
    detector = pixelsift.load_detector(conf=0.3)
    for result in detector.iter_detect(good(photos)):
        row = table[table["path"] == result.path].iloc[0]
        assert [o["label"] for o in row["objects"]] == list(result.detections.class_names)
        boxes = np.array([o["box"] for o in row["objects"]]).reshape(-1, 4)
        assert np.allclose(boxes, result.detections.boxes, atol=1e-3)


def test_resume_after_an_interruption_does_only_the_rest(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    real = batch_job.Worker.process
    calls: list[list[str]] = []

    def interrupted(self: Any, paths: list[str]) -> Any:
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C during the second shard
        calls.append(paths)
        return real(self, paths)

    monkeypatch.setattr(batch_job.Worker, "process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pixelsift.batch.run("classify", photos, out, shard_size=3)
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet"], "the finished shard stays"
    assert json.loads((out / "_job.json").read_text())["finished"] is False

    done: list[list[str]] = []
    monkeypatch.setattr(
        batch_job.Worker, "process", lambda self, paths: done.append(paths) or real(self, paths)
    )
    with pytest.raises(UsageError, match="--resume"):
        pixelsift.batch.run("classify", photos, out, shard_size=3)
    summary = pixelsift.batch.run("classify", photos, out, shard_size=3, resume=True)
    assert (summary.skipped, summary.processed) == (3, 5)
    assert (
        sorted(p for chunk in done for p in chunk)
        == sorted(str(p) for p in photos.rglob("*") if p.is_file())[3:]
    )
    table = pixelsift.batch.read(out)
    assert len(table) == 8 and table["path"].is_unique, "every input exactly once"

    done.clear()
    first = sorted(str(p) for p in photos.rglob("*") if p.is_file())[0]
    Path(first).touch()  # changed since: its shard is done again
    again = pixelsift.batch.run("classify", photos, out, shard_size=3, resume=True)
    assert (again.skipped, again.processed) == (5, 3) and first in done[0]
    with pytest.raises(UsageError, match="holds a classify job"):
        pixelsift.batch.run("embed", photos, out, shard_size=3, resume=True)


def test_manifests_name_the_same_inputs(photos: Path, tmp_path: Path) -> None:
    from pixelsift.batch.inputs import batch_inputs

    files = sorted(p for p in photos.rglob("*") if p.is_file())
    (tmp_path / "list.txt").write_text("# photos\n" + "\n".join(str(p) for p in files) + "\n\n")
    (tmp_path / "list.csv").write_text("path,note\n" + "".join(f"{p},x\n" for p in files))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": [str(p) for p in files]}), tmp_path / "list.parquet")
    expected = [str(p) for p in files]
    assert batch_inputs([photos]) == expected
    for manifest in ("list.txt", "list.csv", "list.parquet"):
        assert batch_inputs([tmp_path / manifest]) == expected, manifest
    assert batch_inputs([str(photos / "*.png"), photos / "rocket.jpg"]) == sorted(
        [str(p) for p in photos.glob("*.png")] + [str(photos / "rocket.jpg")]
    )
    relative = tmp_path / "sub" / "rel.txt"
    relative.parent.mkdir()
    relative.write_text("x.jpg\n")
    assert batch_inputs([relative]) == [str(relative.parent / "x.jpg")], "relative to the manifest's folder"
    uris = batch_inputs([f"file://{photos}"])
    assert uris == [f"file://{p}" for p in expected if Path(p).suffix in (".jpg", ".png")], "a URI prefix"
    # a scheme with no filesystem here is passed on: reading it gives its error row, the job goes on
    assert batch_inputs(["nosuchscheme://bucket/a.jpg"]) == ["nosuchscheme://bucket/a.jpg"]
    for bad, message in (
        (f"file://{tmp_path}/nothing-here", "no such file"),
        (str(tmp_path / "nothing-here"), "no such file"),
        (str(tmp_path / "*.nothing"), "matches no file"),
    ):
        with pytest.raises(UsageError, match=message):
            batch_inputs([bad])
    (tmp_path / "nopath.csv").write_text("file\na.jpg\n")
    with pytest.raises(UsageError, match="'path' column"):
        batch_inputs([tmp_path / "nopath.csv"])


@pytest.mark.parametrize("task", ["classify", "detect"])
def test_photos_read_by_uri_give_the_rows_of_their_paths(photos: Path, tmp_path: Path, task: str) -> None:
    if task == "detect" and pixelsift.detect.default_detector_name() is None:
        pytest.skip("needs a detector here")
    picked = [photos / "chelsea.png", photos / "coffee.png", photos / "broken.jpg"]
    (tmp_path / "uris.txt").write_text("".join(f"file://{p}\n" for p in picked))
    pixelsift.batch.run(task, tmp_path / "uris.txt", tmp_path / "by-uri")  # through pyarrow's filesystem
    pixelsift.batch.run(task, picked, tmp_path / "by-path")
    a, b = pixelsift.batch.read(tmp_path / "by-uri"), pixelsift.batch.read(tmp_path / "by-path")
    assert list(a["path"]) == [f"file://{p}" for p in sorted(map(str, picked))]
    assert list(a["sha256"]) == list(b["sha256"]) and list(a["size"]) == list(b["size"])
    assert list(a["error"].isna()) == [False, True, True], "the broken file is a row with its error"
    column = "labels" if task == "classify" else "objects"
    for x, y in zip(a[column][1:], b[column][1:], strict=True):
        names = (lambda v: list(v)) if task == "classify" else (lambda v: [o["label"] for o in v])
        assert names(x) == names(y)


def test_the_cli_writes_the_job_and_exits_1_for_a_bad_photo(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["batch", "classify", str(photos), "-o", str(out), "-k", "2", "--format", "json"]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["processed"] == 8 and summary["failed"] == 1 and summary["engine"] == "local"
    assert "1 inputs could not be read" in captured.err
    assert main(["batch", "classify", str(photos), "-o", str(out)]) == 2, "an earlier job's folder"
    assert "--resume" in capsys.readouterr().err


def test_the_local_engine_needs_no_ray(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixelsift.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    summary = pixelsift.batch.run("classify", photos / "chelsea.png", tmp_path / "out")
    assert summary.processed == 1
    with pytest.raises(MissingDependencyError, match=r"pixelsift\[ray\]"):
        pixelsift.batch.run("classify", photos / "chelsea.png", tmp_path / "ray-out", engine="ray")


# ------------------------------------------------------------------------------------------ Ray
@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("task", ["classify", "embed", "detect"])
def test_the_ray_engine_writes_what_the_local_engine_writes(
    photos: Path, tmp_path: Path, ray_cluster: Any, task: str
) -> None:
    if task == "detect" and pixelsift.detect.default_detector_name() is None:
        pytest.skip("needs a detector here")
    local = pixelsift.batch.run(task, photos, tmp_path / "local", shard_size=3)
    remote = pixelsift.batch.run(
        task, photos, tmp_path / "ray", engine="ray", shard_size=3, batch_size=2, cpus_per_worker=0.5
    )
    assert (remote.processed, remote.failed, remote.shards) == (local.processed, local.failed, local.shards)
    assert sorted(p.name for p in (tmp_path / "ray").glob("part-*")) == sorted(
        p.name for p in (tmp_path / "local").glob("part-*")
    ), "the same shard names"
    a, b = pixelsift.batch.read(tmp_path / "local"), pixelsift.batch.read(tmp_path / "ray")
    assert list(a["path"]) == list(b["path"]) and list(a["error"].isna()) == list(b["error"].isna())
    for x, y in zip(a[a["error"].isna()].itertuples(), b[b["error"].isna()].itertuples(), strict=True):
        if task == "detect":
            assert [o["label"] for o in x.objects] == [o["label"] for o in y.objects]
            boxes = [np.array([o["box"] for o in v.objects]).reshape(-1, 4) for v in (x, y)]
            assert np.allclose(boxes[0], boxes[1], atol=1e-3)
            continue
        assert list(x.labels) == list(y.labels) and np.allclose(x.scores, y.scores, atol=1e-6)
        if task == "embed":
            assert np.allclose(np.asarray(x.vector), np.asarray(y.vector), atol=1e-6)
    record = json.loads((tmp_path / "ray" / "_job.json").read_text())
    assert record["engine"] == "ray"
    local_ran = json.loads((tmp_path / "local" / "_job.json").read_text())["ran"]
    assert record["ran"] == local_ran and record["ran"]["device"] == "cpu", "what the workers ran on"


def _kill_a_worker_process() -> int | None:
    """SIGKILL one Ray Data worker actor process (found by its process title); its pid, or None."""
    import os
    import signal

    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "MapWorker" in command:
            os.kill(int(pid), signal.SIGKILL)
            return int(pid)
    return None


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_job_still_gives_every_input_once(tmp_path: Path, ray_cluster: Any) -> None:
    import threading
    import time

    folder = tmp_path / "many"
    for i in range(40):
        write_image(folder / f"g{i:02d}.jpg", size=(160, 120), seed=i)
    out = tmp_path / "out"
    done: dict[str, Any] = {}

    def job() -> None:
        done["summary"] = pixelsift.batch.run(
            "classify", folder, out, engine="ray", shard_size=4, batch_size=2, cpus_per_worker=0.5
        )

    thread = threading.Thread(target=job)
    thread.start()
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and thread.is_alive():
        if any(out.glob("part-*.parquet")):  # mid-job: some shards written, more to come
            killed = _kill_a_worker_process()
        time.sleep(0.1)
    thread.join(600)
    assert killed is not None, "the job ended before a worker could be killed"
    summary = done["summary"]
    assert (summary.processed, summary.failed, summary.shards_written) == (40, 0, 10)
    table = pixelsift.batch.read(out)
    assert len(table) == 40 and table["path"].is_unique, "every input exactly once"


def test_an_index_built_from_batch_results_searches_like_a_plain_index(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelsift.library import PhotoIndex
    from pixelsift.library.sources import ClassifierSource

    pixelsift.batch.run("embed", photos, tmp_path / "embed")
    with PhotoIndex(tmp_path / "plain.db") as plain:
        plain.update(photos, detector="none")
        expected = {q: plain.search(q, min_score=0.05) for q in ("cat", "espresso", "rocket", "person")}
        alike = plain.similar(photos / "chelsea.png", n=4)
    classified: list[Any] = []  # the photos the classifier ran on here
    real = ClassifierSource.prepare

    def spy(self: Any, image: Any) -> Any:
        classified.append(image)
        return real(self, image)

    monkeypatch.setattr(ClassifierSource, "prepare", spy)
    with PhotoIndex(tmp_path / "batch.db") as index:
        report = index.update(photos, detector="none", from_batch=[tmp_path / "embed"])
        assert report.annotated.get("taken from batch results") == 7
        assert classified == [], "the classifier ran on none of the photos the job covered"
        assert [Path(p).name for p, _ in report.failed] == ["broken.jpg"]
        for query, plain_results in expected.items():
            got = index.search(query, min_score=0.05)
            assert [r.relative_path for r in got] == [r.relative_path for r in plain_results], query
            assert [r.score for r in got] == pytest.approx([r.score for r in plain_results], abs=0.02)
        assert [r.relative_path for r in index.similar(photos / "chelsea.png", n=4)] == [
            r.relative_path for r in alike
        ]
        assert index.update().annotated == {}, "nothing left to catch up"


def test_from_batch_takes_raw_features_from_unit_vectors_and_their_norms_or_from_a_raw_job(
    photos: Path, tmp_path: Path
) -> None:
    """`batch embed` writes unit vectors by default, as `pixelsift embed`, with each row's norm: the
    index gets the raw features back (vector x norm), the same as from a `--normalize none` job. A
    job of unit vectors without norms is one clear error."""
    import pyarrow.parquet as pq

    from pixelsift.library import PhotoIndex
    from pixelsift.library.rows import FEATURES

    photo = photos / "chelsea.png"
    pixelsift.batch.run("embed", photo, tmp_path / "unit")  # the default: l2
    pixelsift.batch.run("embed", photo, tmp_path / "raw", normalize="none")
    unit, raw = pixelsift.batch.read(tmp_path / "unit"), pixelsift.batch.read(tmp_path / "raw")
    assert np.linalg.norm(np.asarray(unit["vector"][0])) == pytest.approx(1.0, abs=1e-5)
    assert unit["norm"][0] == pytest.approx(np.linalg.norm(np.asarray(raw["vector"][0])), rel=1e-5)
    stored = {}
    for job in ("unit", "raw"):
        library = tmp_path / f"photos-{job}"
        library.mkdir()
        shutil.copy(photo, library / photo.name)
        with PhotoIndex(tmp_path / f"{job}.db") as index:
            report = index.update(library, detector="none", from_batch=[tmp_path / job])
            assert report.annotated.get("taken from batch results") == 1
            [(_, stored[job])] = index.store.vectors_of(FEATURES, [1])
    assert stored["unit"] == pytest.approx(stored["raw"], rel=1e-4, abs=1e-5)

    shard = next((tmp_path / "unit").glob("part-*.parquet"))  # as a job from before the norms
    pq.write_table(pq.read_table(shard).drop_columns(["norm"]), shard)
    with pytest.raises(UsageError, match="without their norms"):
        PhotoIndex(tmp_path / "old.db").update(photos, detector="none", from_batch=[tmp_path / "unit"])


@pytest.mark.timeout(300)
def test_a_model_that_cannot_load_is_one_clear_error_before_any_worker_starts(
    photos: Path, tmp_path: Path, ray_cluster: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelsift.errors import UnknownModelError, WeightsMissingError

    monkeypatch.setenv("PIXELSIFT_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match="resnet50"):  # no weights offline in a fresh home
        pixelsift.batch.run(
            "classify", photos / "chelsea.png", tmp_path / "a", engine="ray", model="resnet50"
        )
    with pytest.raises(UnknownModelError):
        pixelsift.batch.run(
            "classify", photos / "chelsea.png", tmp_path / "b", engine="ray", model="no-such-net"
        )
    assert not (tmp_path / "a").exists(), "nothing written: the same command works once the weights are there"


def test_batch_flags_mean_what_they_mean_elsewhere_and_the_old_spellings_still_work(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = str(photos / "chelsea.png")
    new = ["batch", "classify", one, "-o", str(tmp_path / "new"), "--cluster", "local", "--engine", "torch"]
    assert main([*new, "--cluster-workers", "1", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "note:" not in captured.err, "the new spellings need no note"
    record = json.loads((tmp_path / "new" / "_job.json").read_text())
    assert record["engine"] == "local" and record["precision"] == "auto", "what was asked"
    assert record["ran"]["engine"] == "torch" and record["ran"]["precision"] in ("fp32", "bf16", "fp16")
    assert record["ran"]["device"] == "cpu", "and what ran"
    old = ["batch", "classify", one, "-o", str(tmp_path / "old"), "--engine", "local", "--workers", "1"]
    assert main([*old, "--inference-engine", "torch"]) == 0
    err = capsys.readouterr().err
    for was, now in (("--engine local", "--cluster local"), ("--workers 1", "--cluster-workers 1")):
        assert f"`batch {was}` is now `batch {now}`" in err
    assert "`batch --inference-engine torch` is now `batch --engine torch`" in err
    bad = ["batch", "classify", one, "-o", str(tmp_path / "bad"), "--engine", "ray", "--cluster", "local"]
    assert main(bad) == 2 and "disagree" in capsys.readouterr().err
