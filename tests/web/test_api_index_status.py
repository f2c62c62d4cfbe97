"""`pixelsift serve --index FOLDER`: the server indexes the folder in the background, keeps it current as
photos arrive, says how far it has got (`/api/index/status`), and the page's searches read meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from helpers import write_image
from pixelsift.core.progress import observed, progress_bar
from pixelsift.web import WebConfig, create_app


def wait_for(
    client: TestClient, check: Callable[[dict[str, Any]], bool], seconds: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get("/api/index/status").json()
        assert status["state"] != "failed", status
        if check(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"the status never got there: {status}")


def test_the_server_indexes_then_keeps_the_index_current(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(3):
        write_image(photos / f"p{i}.jpg", size=(80, 60), seed=i)
    config = WebConfig(db=tmp_path / "i.db", index_folder=photos, detector="none")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        first = wait_for(client, lambda s: s["updates"] >= 1)
        assert first["state"] == "watching" and first["photos"] == 3 and first["folder"] == "photos"
        assert "3 new" in first["last"] and str(tmp_path) not in str(first), "no server paths"
        assert client.get("/api/library").json()["photos"] == 3, "the page reads what was written"
        write_image(photos / "later.jpg", size=(80, 60), seed=9)
        second = wait_for(client, lambda s: s["updates"] >= 2)
        assert second["photos"] == 4 and "1 new" in second["last"]
        assert client.get("/api/photos").json()["total"] == 4
    assert create_app(WebConfig()).state.indexing is None


def test_a_server_that_does_not_index_says_off() -> None:
    client = TestClient(create_app(WebConfig()), base_url="http://127.0.0.1")
    assert client.get("/api/index/status").json()["state"] == "off"


def test_progress_bars_report_to_an_observer_shown_or_not() -> None:
    seen: list[tuple[str, int, int | None]] = []
    listener = observed(lambda step, done, total: seen.append((step, done, total)))
    with listener, progress_bar(total=3, desc="index", enabled=False) as bar:
        bar.update(2)
        bar.update(1)
    with progress_bar(total=3, desc="later", enabled=False) as bar:
        bar.update(3)  # outside the block: nobody is told
    assert seen == [("index", 0, 3), ("index", 2, 3), ("index", 3, 3)]


def test_while_indexing_the_status_is_n_of_total_with_rate_and_time_left(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import pixelsift.web.indexing as indexing

    clock = iter([100.0, 110.0])
    monkeypatch.setattr(indexing.time, "monotonic", lambda: next(clock))
    background = indexing.BackgroundIndexer(tmp_path / "photos", tmp_path / "i.db", {})  # not started
    background._progress("index", 0, 100)
    background._progress("index", 20, 100)  # 20 photos in 10 s
    status = background.status()
    assert status["state"] == "indexing" and status["step"] == "indexing photos"
    assert (status["done"], status["total"], status["rate"], status["seconds_left"]) == (20, 100, 2.0, 40)


def test_serve_index_of_a_folder_that_is_not_there_is_bad_usage(tmp_path: Path, capsys: Any) -> None:
    from pixelsift.cli import main

    assert main(["serve", "--index", str(tmp_path / "nope"), "--port", "1"]) == 2
    assert "--index" in capsys.readouterr().err
