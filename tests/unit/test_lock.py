"""requirements.lock and pyproject.toml agree: every dependency pyproject names (core and every extra)
is pinned in the lock, at a version its range admits; the ranges exclude the releases known to break
pixelsift; the Makefile installs from the lock."""

from __future__ import annotations

import re

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from tests.conftest import REPO

LOCK = REPO / "requirements.lock"


def locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        found += [Requirement(r) for r in extra]
    return [r for r in found if canonicalize_name(r.name) != "pixelsift"]  # self-references: the extras


def test_every_pyproject_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    wrong = []
    for req in requirements():
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate():
            continue
        if name not in pins:
            wrong.append(f"{req} is not in requirements.lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            wrong.append(f"{req} does not admit the locked {name}=={pins[name]}")
    assert not wrong, "pyproject.toml and requirements.lock disagree (run `make lock`):\n" + "\n".join(wrong)


def test_lock_pins_the_torch_the_makefile_installs() -> None:
    makefile = (REPO / "Makefile").read_text()
    torch_line = re.search(r"^TORCH\s*:=\s*(.+)$", makefile, re.M)
    assert torch_line is not None
    pins = locked()
    for pin in torch_line.group(1).split():
        name, version = pin.split("==")
        assert pins[canonicalize_name(name)] == Version(version), pin


def test_lock_keeps_one_opencv_provider_at_one_release() -> None:
    pins = locked()
    headless = pins[canonicalize_name("opencv-python-headless")]
    # ultralytics asks for opencv-python: pinned to the same release, then removed by `make`
    assert pins.get(canonicalize_name("opencv-python"), headless) == headless
    assert "opencv-python " not in (REPO / "pyproject.toml").read_text().replace('"', " ")


def test_the_offline_detector_needs_no_opencv() -> None:
    """The packaged SSD runs in torch: its extra pulls in no OpenCV, so OpenCV 5 (no TensorFlow
    importer) cannot break it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    offline = [Requirement(r) for r in project["optional-dependencies"]["detect-offline"]]
    assert not [r for r in offline if canonicalize_name(r.name).startswith("opencv")]


def test_make_installs_from_the_lock() -> None:
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "install" in line and "-e '." in line]
    assert installs
    assert all("$(CONSTRAINTS)" in line for line in installs), installs
    assert re.search(r"^CONSTRAINTS\s*\?=\s*-c \$\(LOCK\)$", makefile, re.M)
    assert re.search(r"^LOCK\s*:=\s*requirements\.lock$", makefile, re.M)
