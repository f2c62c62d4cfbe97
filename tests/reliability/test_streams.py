"""Where the output goes can fail too: a full stdout (/dev/full), a reader that went away, a working
folder deleted under the shell. Each is one line and an exit code, never a traceback or a native abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


def _run(args: list[str], stdout: object, cwd: Path | str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "pixelsift", *args],
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_full_stdout_is_one_line_and_exit_1(fmt: str, samples: Path) -> None:
    with open("/dev/full", "w") as full:
        result = _run(["classify", str(samples / "chelsea.png"), "--format", fmt], full, REPO)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert "cannot write (standard output): No space left on device" in line


def test_a_deleted_working_folder_is_one_line_and_exit_2(samples: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    # the child starts inside the folder, which is removed before pixelsift starts working
    script = (
        f"import os, runpy, sys; os.rmdir({str(gone)!r}); sys.argv = ['pixelsift', *sys.argv[1:]]; "
        "runpy.run_module('pixelsift', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-c", script, "classify", str(samples / "chelsea.png")],
        capture_output=True,
        text=True,
        env=env,
        cwd=gone,
        timeout=600,
    )
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        == "pixelsift: error: the current folder no longer exists; cd to a folder that does"
    )


@pytest.mark.parametrize("delay", [2.5, 3.5, 5.0])
def test_ctrl_c_during_models_tune_exits_130_without_a_native_abort(delay: float, tmp_path: Path) -> None:
    """Ctrl-C at different moments of the measurement (export, compile, the measuring threads)."""
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PIXELSIFT_HOME": str(tmp_path / "home")}
    child = subprocess.Popen(
        [sys.executable, "-m", "pixelsift", "models", "tune", "efficientnet_lite0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as a terminal delivers it: SIGINT with its default action, whatever this process inherited
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    if child.returncode == 0:
        pytest.skip(f"the measurement finished in under {delay} s on this machine")
    assert child.returncode == 130, err
    assert "terminate called" not in err and "Traceback" not in err
    assert "pixelsift: interrupted" in err
