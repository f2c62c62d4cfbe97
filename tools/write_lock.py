"""Write `requirements.lock` from a virtual environment the whole suite has just passed in.

`make lock` runs this after `make test` passed in a fresh `.venv-lock` installed without the lock
(the newest releases the ranges in pyproject.toml admit). The lock is a pip constraints file: exact
versions for everything installed, which `make demo` and `make test` install with `-c`. Two fix-ups:
pixelsift itself is left out, and `opencv-python` (which ultralytics asks for) is pinned to the
version of `opencv-python-headless`, the one OpenCV package pixelsift keeps (both write the same `cv2`
module; `make` removes `opencv-python` after installing).

    python tools/write_lock.py .venv-lock requirements.lock
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEADER = """\
# The exact releases the whole suite passed with (pip constraints: `pip install -c requirements.lock`).
# `make demo` and `make test` install from it, so a fresh machine gets what CI tested. Do not edit by hand:
# `make lock` re-resolves the newest releases pyproject.toml admits, runs `make test` on them and
# rewrites this file only when everything passes (README: "Upgrading dependencies").
"""


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def locked_lines(freeze: str) -> list[str]:
    pins: dict[str, str] = {}
    for line in freeze.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "==" not in line:
            continue  # editable installs and direct references are not pins
        name, version = line.split("==", 1)
        pins[canonical(name)] = version.strip()
    pins.pop("pixelsift", None)
    if "opencv-python-headless" in pins:
        pins["opencv-python"] = pins["opencv-python-headless"]
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: write_lock.py VENV LOCKFILE", file=sys.stderr)
        return 2
    python = Path(argv[0]) / "bin" / "python"
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = locked_lines(freeze)
    target = Path(argv[1])
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(HEADER + "\n".join(lines) + "\n")
    partial.replace(target)
    print(f"wrote {target}: {len(lines)} pinned releases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
