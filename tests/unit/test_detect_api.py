"""The detection API: `pixelsift.detect` is both a function and a package, and importing it is light."""

from __future__ import annotations

import subprocess
import sys

import pixelsift


def test_detect_package_and_cli_import_no_heavy_library() -> None:
    code = (
        "import sys, pixelsift\n"
        "import pixelsift.detect\n"
        "from pixelsift.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'cv2', 'ultralytics') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_pixelsift_detect_is_callable_and_holds_the_api() -> None:
    import pixelsift.detect as package
    from pixelsift.detect.api import detect, load_detector

    assert pixelsift.detect is package, "the package, not a function shadowing it"
    assert callable(pixelsift.detect)
    assert pixelsift.detect.detect is detect and pixelsift.detect.load_detector is load_detector
    assert pixelsift.load_detector is load_detector
    assert {"Detections", "load_detector", "detect"} <= set(dir(pixelsift))


def test_calling_the_package_is_calling_detect(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pixelsift.detect as package

    seen = {}

    def fake_detect(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(args=args, kwargs=kwargs)
        return iter(())

    monkeypatch.setattr(package, "detect", fake_detect)
    pixelsift.detect("photos/", model="yolov8n")
    assert seen == {"args": ("photos/",), "kwargs": {"model": "yolov8n"}}
