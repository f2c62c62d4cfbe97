"""The on-disk feature cache: file hashes remembered by stat, vectors by (content, feature key)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from helpers import write_image
from pixelsift.errors import ImageError
from pixelsift.features import cache as featurecache
from pixelsift.features.cache import FeatureCache, feature_key


def test_unchanged_files_are_not_read_again_and_changed_ones_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = write_image(tmp_path / "a.png", seed=1)
    reads: list[str] = []
    real = featurecache.file_sha256
    monkeypatch.setattr(featurecache, "file_sha256", lambda p: reads.append(str(p)) or real(p))
    with FeatureCache(tmp_path / "cache") as cache:
        first = cache.file_digest(photo)
        assert first == hashlib.sha256(photo.read_bytes()).hexdigest()
        assert cache.file_digest(photo) == first
        assert reads == [str(photo)], "the second lookup came from the stat record"
        write_image(photo, seed=2)  # new content, same name and size
        changed = cache.file_digest(photo)
    assert changed != first and changed == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert len(reads) == 2


def test_unreadable_files_become_image_errors(tmp_path: Path) -> None:
    with FeatureCache(tmp_path / "cache") as cache:
        missing, folder = cache.file_digests([tmp_path / "nope.jpg", tmp_path])
    assert isinstance(missing, ImageError) and missing.reason == "no such file"
    assert isinstance(folder, ImageError) and "folder" in folder.reason


def test_vectors_round_trip_per_key_and_damaged_rows_are_ignored(tmp_path: Path) -> None:
    v1 = np.arange(4, dtype=np.float32)
    with FeatureCache(tmp_path / "cache") as cache:
        assert cache.put("k1", {"model": "m"}, [("d1", v1), ("d2", v1 * 2)]) == 2
        found = cache.get("k1", ["d1", "d2", "d3"])
        assert set(found) == {"d1", "d2"}
        np.testing.assert_array_equal(found["d2"], v1 * 2)
        assert found["d1"].dtype == np.float32
        assert cache.get("k2", ["d1"]) == {}, "another key (model, weights, precision ...) is another vector"
        with sqlite3.connect(cache.path) as conn:
            conn.execute("UPDATE features SET dim = 5 WHERE sha256 = 'd1'")
        assert set(cache.get("k1", ["d1", "d2"])) == {"d2"}
        assert cache.count("k1") == 2
        cache.clear()
        assert cache.count() == 0


def test_the_database_is_created_with_the_current_schema_and_no_pickles(tmp_path: Path) -> None:
    with FeatureCache(tmp_path / "cache") as cache:
        cache.put("k", {}, [("d", np.ones(3, np.float32))])
        with sqlite3.connect(cache.path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            (blob,) = conn.execute("SELECT vector FROM features").fetchone()
    assert blob == np.ones(3, np.float32).tobytes(), "vectors are raw float32 bytes"


def test_feature_key_depends_on_everything_that_changes_the_numbers() -> None:
    base = {"model": "m", "weights_sha256": "w", "preprocessing": {"resize": 256}, "precision": "fp32"}
    keys = {
        feature_key(base),
        feature_key({**base, "model": "n"}),
        feature_key({**base, "weights_sha256": "x"}),
        feature_key({**base, "preprocessing": {"resize": 299}}),
        feature_key({**base, "precision": "bf16"}),
        feature_key({**base, "backbone_state": "abc"}),
    }
    assert len(keys) == 6
    assert feature_key(dict(reversed(base.items()))) == feature_key(base), "order does not matter"
