"""Every test runs offline, in a temporary PIXELSIFT_HOME, with outbound network connections refused."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SHARED = REPO.parent / "shared"


class NetworkAccessError(RuntimeError):
    pass


_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host in ("localhost", "::1") or host.startswith("127.") or host.startswith("/")
    ):
        return _real_connect(self, address)  # loopback and unix sockets (test servers) are fine
    if self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    raise NetworkAccessError(f"test tried to reach the network: {address!r}")


@pytest.fixture(scope="session", autouse=True)
def offline_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("pixelsift-home")
    env = {
        "PIXELSIFT_HOME": str(home),
        "PIXELSIFT_OFFLINE": "1",
        # `--engine auto` measures engines on the machine it runs on: tests pin torch so their numbers
        # do not depend on which engine a CI machine finds fastest; the auto tests unset it themselves
        "PIXELSIFT_ENGINE": "torch",
        "HF_HUB_OFFLINE": "1",
        "TORCH_HOME": str(home / "torch"),
        "YOLO_OFFLINE": "1",
        "YOLO_CONFIG_DIR": str(home / "ultralytics"),
        "MPLBACKEND": "Agg",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    try:
        yield home
    finally:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty PIXELSIFT_HOME for tests that add or look for weights."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("PIXELSIFT_HOME", str(path))
    from pixelsift.runtime.loaded import clear_model_cache

    clear_model_cache()
    yield path
    clear_model_cache()


@pytest.fixture
def random_resnet18(home: Path, tmp_path: Path) -> str:
    """resnet18 with random weights saved by the test and imported into a fresh home (`models add`)."""
    import torch

    from pixelsift.models import weights
    from pixelsift.models.registry import get_model_spec

    spec = get_model_spec("resnet18")
    torch.manual_seed(0)
    torch.save(spec.build().state_dict(), tmp_path / "r18.pth")  # type: ignore[misc]
    weights.add(spec, tmp_path / "r18.pth")
    return "resnet18"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED
