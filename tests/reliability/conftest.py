"""Hostile inputs built by the tests themselves: folders with link loops and FIFOs, thin and tiny-but-huge
images, damaged and unwritable files of pixelsift's own."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import write_image


def make_unwritable(*paths: Path) -> bool:
    """Make files / folders unwritable for this process: `chattr +i` as root (root ignores modes),
    else `chmod a-w`. False when neither works here."""
    if os.geteuid() == 0:
        if not shutil.which("chattr"):
            return False
        for path in paths:
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
                return False
        return True
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return True


def make_writable(*paths: Path) -> None:
    for path in paths:
        if os.geteuid() == 0 and shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        with contextlib.suppress(OSError):
            path.chmod(0o755 if path.is_dir() else 0o644)


@contextlib.contextmanager
def unwritable(*paths: Path) -> Iterator[None]:
    if not make_unwritable(*paths):
        make_writable(*paths)
        pytest.skip("cannot make files unwritable on this machine (no chattr as root)")
    try:
        yield
    finally:
        make_writable(*paths)


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    """Two readable photos (one through a folder link), a symbolic link loop, a broken link, a FIFO,
    a folder link back to its parent and a file that is not an image."""
    root = tmp_path / "photos"
    write_image(root / "good.jpg", size=(80, 60), seed=1)
    write_image(root / "sub" / "good2.png", size=(70, 50), seed=2, fmt="PNG")
    (root / "loop_a.jpg").symlink_to("loop_b.jpg")
    (root / "loop_b.jpg").symlink_to("loop_a.jpg")
    (root / "broken.jpg").symlink_to("nowhere.jpg")
    os.mkfifo(root / "pipe.png")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock.jpg"))  # a socket file named like a photo
    sock.close()
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)  # a folder loop
    (root / "notes.jpg").write_text("not an image\n")
    return root


# name -> what the one line about it says
HOSTILE = {
    "loop_a.jpg": "symbolic link loop",
    "loop_b.jpg": "symbolic link loop",
    "broken.jpg": "broken symbolic link",
    "pipe.png": "named pipe",
    "sock.jpg": "a socket",
    "notes.jpg": "not an image",
}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on its own 2 MB tmpfs (root only: mounting needs it), to be filled with `fill`."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a full disk is simulated with a tmpfs mount, which needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the disk of `folder` to the last byte."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as fh:
        while True:  # until ENOSPC
            fh.write(b"\0" * 4096)


@pytest.fixture
def full_disk(small_disk: Path) -> Path:
    fill(small_disk)
    return small_disk


def small_library(samples: Path, folder: Path, db: Path) -> Path:
    """`folder` with a cat (cat.png) and a cup of coffee (cup.png), indexed into `db` without a detector."""
    from pixelsift.library import PhotoIndex

    folder.mkdir(parents=True)
    shutil.copy(samples / "chelsea.png", folder / "cat.png")
    shutil.copy(samples / "coffee.png", folder / "cup.png")
    with PhotoIndex(db) as index:
        index.update(folder, detector="none")
    return db
