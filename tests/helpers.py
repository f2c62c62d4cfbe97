"""Test helpers: generated images and a bad-input zoo."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


def write_image(
    path: Path,
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] = (200, 30, 30),
    mode: str = "RGB",
    fmt: str | None = None,
    seed: int = 0,
) -> Path:
    """A small noisy image (so JPEG encodes real content), written to `path`."""
    rng = np.random.default_rng(seed)
    arr = np.clip(rng.normal(0, 20, (size[1], size[0], 3)) + np.array(color), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def make_bad_inputs(folder: Path) -> dict[str, Path]:
    """One file of every kind of unreadable input, plus whether permission denial can be made real."""
    folder.mkdir(parents=True, exist_ok=True)
    bad: dict[str, Path] = {}
    bad["empty"] = folder / "b_empty.jpg"
    bad["empty"].write_bytes(b"")
    good = write_image(folder / "tmp_full.jpg", size=(200, 150))
    data = good.read_bytes()
    good.unlink()
    bad["truncated"] = folder / "c_truncated.jpg"
    bad["truncated"].write_bytes(data[: len(data) // 3])
    bad["not_image"] = folder / "d_notes.jpg"
    bad["not_image"].write_text("this is a text file with a .jpg name\n")
    # 20000 x 20000 one-bit PNG: 400 megapixels in a few kilobytes.
    bad["bomb"] = folder / "e_bomb.png"
    Image.new("1", (20000, 20000)).save(bad["bomb"])
    bad["denied"] = folder / "f_denied.jpg"
    write_image(bad["denied"])
    os.chmod(bad["denied"], 0)
    return bad


@contextlib.contextmanager
def as_unprivileged_user() -> Iterator[None]:
    """Root reads files whatever their mode; act as `nobody` so a chmod 000 file is really unreadable."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@contextlib.contextmanager
def shared_tmp_dir() -> Iterator[Path]:
    """A temporary folder that another user can enter (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="pixelsift-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in path.rglob("*"):
            with contextlib.suppress(OSError):
                child.chmod(0o755 if child.is_dir() else 0o644)
        shutil.rmtree(path, ignore_errors=True)


def run_cli(
    *args: str, input: str | None = None, env: dict[str, str | None] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pixelsift ARGS` in a subprocess (the real entry point, exit code and streams);
    `env` adds variables, and removes those it gives as None."""
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pixelsift", *args],
        input=input,
        capture_output=True,
        text=True,
        env={k: v for k, v in merged.items() if v is not None},
        cwd=cwd or REPO,
        timeout=600,
    )
