"""An index's settings as one typed record: saved and read back whole, kept in the meta rows indexes
have always had (so an index written before the record existed reads the same), and a damaged value is
one clear error that names the repair."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pixelsift.errors import LibraryFileError
from pixelsift.library import schema
from pixelsift.library.rows import LabelerEntry, LibrarySettings
from pixelsift.library.store import LibraryStore


def test_settings_round_trip_and_unchanged_fields_stay(tmp_path: Path) -> None:
    store = LibraryStore.open(tmp_path / "i.db")
    try:
        assert store.settings().library_id  # made with the index
        labelers = (LabelerEntry("birds", "/models/birds.safetensors", "ab" * 32),)
        with store.transaction():
            store.save_settings(root="/photos", model="efficientnet_lite0", embed_dim=1280, labelers=labelers)
            store.save_settings(detector="none")
        settings = store.settings()
        assert settings.root == "/photos" and settings.model == "efficientnet_lite0"
        assert settings.embed_dim == 1280 and settings.detector == "none"
        assert settings.labelers == labelers and settings.text_image is None
        with pytest.raises(TypeError):
            store.save_settings(colour="red")  # not a setting: a programming error, not a silent key
    finally:
        store.close()


def test_an_index_written_with_plain_meta_rows_reads_as_settings(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.migrate(conn)
    rows = {
        "root": "/photos",
        "model": "resnet50",
        "embed_dim": "2048",
        "labelers": json.dumps([{"name": "cats", "path": "/m/cats.safetensors", "sha256": "cd" * 32}]),
        "text_image": "none",
    }
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows.items())
    conn.close()
    store = LibraryStore.open(path)
    try:
        settings = store.settings()
    finally:
        store.close()
    assert settings == LibrarySettings(
        root="/photos",
        model="resnet50",
        embed_dim=2048,
        labelers=(LabelerEntry("cats", "/m/cats.safetensors", "cd" * 32),),
        text_image="none",
        library_id=settings.library_id,
    )
    assert settings.to_meta()["labelers"] == rows["labelers"]


def test_a_damaged_setting_is_one_error_naming_the_repair(tmp_path: Path) -> None:
    store = LibraryStore.open(tmp_path / "i.db")
    try:
        store.conn.execute("INSERT INTO meta (key, value) VALUES ('labelers', '{not json')")
        with pytest.raises(LibraryFileError, match=r"'labelers' setting is damaged.*index --repair"):
            store.settings()
    finally:
        store.close()
    kept = LibraryStore.salvage_settings(tmp_path / "i.db", ("labelers", "library_id"))
    assert kept.labelers == () and kept.library_id, "repair keeps what still reads, leaves the damage"
