"""The server answers only requests addressed to its own names and sent from its own page: a DNS
rebinding page (a foreign Host) gets 421 on every route, another site's page (a foreign Origin) 403."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pixelsift.cli import build_parser
from pixelsift.cli.serve import allowed_hosts
from pixelsift.web import WebConfig, create_app
from pixelsift.web.app import split_host

ROUTES = ["/", "/api/models", "/api/library", "/openapi.json", "/static/app.js", "/api/photos/1"]


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(WebConfig(port=8000))


@pytest.mark.parametrize("route", ROUTES)
def test_a_rebinding_host_gets_421_on_every_route(app: FastAPI, route: str) -> None:
    client = TestClient(app, base_url="http://attacker.test:8000")
    response = client.get(route)
    assert response.status_code == 421, response.text
    assert "does not answer to the host 'attacker.test:8000'" in response.json()["error"]
    assert "--allow-host" in response.json()["error"]


@pytest.mark.parametrize("base", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_the_servers_own_names_are_answered(app: FastAPI, base: str) -> None:
    assert TestClient(app, base_url=base).get("/api/models").status_code == 200


def test_its_own_name_at_another_port_is_refused(app: FastAPI) -> None:
    assert TestClient(app, base_url="http://127.0.0.1:9999").get("/api/models").status_code == 421


def test_a_foreign_origin_is_refused_and_the_page_itself_is_not(app: FastAPI, samples: Path) -> None:
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    photo = {"file": ("coffee.png", (samples / "coffee.png").read_bytes(), "image/png")}
    evil = client.post("/api/classify", files=photo, headers={"Origin": "http://evil.example.com"})
    assert evil.status_code == 403 and "--cors http://evil.example.com" in evil.json()["error"]
    for origin in ("null", "http://127.0.0.1:9999", "file://"):
        assert client.get("/api/models", headers={"Origin": origin}).status_code == 403, origin
    own = client.post("/api/classify?k=1", files=photo, headers={"Origin": "http://127.0.0.1:8000"})
    assert own.status_code == 200 and own.json()["predictions"][0]["label"] == "espresso"
    assert client.get("/api/models").status_code == 200, "no Origin (a top-level visit): answered"


def test_a_cors_origin_is_let_through(samples: Path) -> None:
    app = create_app(WebConfig(port=8000, cors_origins=["http://app.example"]))
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    response = client.get("/api/models", headers={"Origin": "http://app.example"})
    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") == "http://app.example"


def test_allow_host_adds_names_and_a_wildcard_bind_answers_any_name() -> None:
    args = build_parser().parse_args(["serve", "--allow-host", "Photos.Home.LAN"])
    names = allowed_hosts(args.host, args.allow_host)
    assert set(names) == {"127.0.0.1", "localhost", "::1", "photos.home.lan"}
    app = create_app(WebConfig(allowed_hosts=names, port=8000))
    assert TestClient(app, base_url="http://photos.home.lan:8000").get("/api/models").status_code == 200
    assert allowed_hosts("0.0.0.0", []) == ()
    anywhere = create_app(WebConfig(allowed_hosts=(), port=8000))
    assert TestClient(anywhere, base_url="http://192.168.1.20:8000").get("/api/models").status_code == 200
    assert allowed_hosts("192.168.1.20", [])[-1] == "192.168.1.20"


def test_host_headers_are_parsed_as_browsers_send_them() -> None:
    assert split_host("LocalHost:8000") == ("localhost", 8000)
    assert split_host("[::1]:8000") == ("::1", 8000)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("127.0.0.1") == ("127.0.0.1", None)
    assert split_host("") == ("", None)
