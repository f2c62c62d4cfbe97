"""Which engine runs the text reader's networks here: ONNX Runtime or OpenVINO.

`--engine auto` (the default) measures both once per machine on a made photo with known text, keeps
only an engine that reads that text exactly, and remembers the faster in `$PIXELSIFT_HOME/tuning/`
(keyed by the CPU, its count and the libraries' versions, so an upgrade measures again). On a CPU with
AMX, OpenVINO runs PP-OCR's networks in bf16 and was 3-4x faster than ONNX Runtime; elsewhere either
may win, so it is measured, not assumed. `--engine onnxruntime` / `openvino` choose one; `torch`
(the other networks' engine) leaves the reader on auto. A GPU (ONNX Runtime's CUDA provider) skips the
measurement.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pixelsift.config import available_cpus, get_settings
from pixelsift.core.hashing import short_digest
from pixelsift.core.machine import cpu_model, library_versions, write_json
from pixelsift.core.optional import is_installed

log = logging.getLogger("pixelsift")

ENGINES = ("onnxruntime", "openvino")
CHECK_LINES = ("Engine check 2026", "Happy Birthday")
_FORMAT = 1


def check_photo() -> Any:
    """The made photo each engine must read exactly: two lines of dark text on a pale sign."""
    from PIL import Image, ImageDraw

    from pixelsift.imaging.fonts import label_font

    img = Image.new("RGB", (960, 540), (90, 120, 80))
    draw = ImageDraw.Draw(img)
    draw.rectangle((80, 140, 880, 400), fill=(240, 238, 228))
    font = label_font(64)
    for i, line in enumerate(CHECK_LINES):
        draw.text((120, 170 + i * 110), line, fill=(20, 20, 20), font=font)
    return img


def _key(threads: int) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "cpu": cpu_model(),
        "cpus": available_cpus(),
        "threads": threads,
        "versions": library_versions(),
    }


def _path(key: dict[str, Any]) -> Any:
    return get_settings().home / "tuning" / f"ocr-{short_digest(json.dumps(key, sort_keys=True))}.json"


def remembered(threads: int) -> str | None:
    """The engine measured fastest here before, or None."""
    key = _key(threads)
    try:
        data = json.loads(_path(key).read_text())
        engine = data.get("engine")
        return str(engine) if data.get("key") == key and engine in ENGINES else None
    except (OSError, ValueError, AttributeError):
        return None


def measure(build: Callable[[str], Any], read: Callable[[Any, Any], list[str]]) -> dict[str, float | None]:
    """engine -> ms to read the check photo (best of three), or None where it did not read the check
    photo's text exactly (or could not run)."""
    photo = check_photo()
    out: dict[str, float | None] = {}
    for engine in ENGINES:
        try:
            runner = build(engine)
            if read(runner, photo) != list(CHECK_LINES):
                out[engine] = None
                continue
            times = []
            for _ in range(3):
                start = time.perf_counter()
                read(runner, photo)
                times.append((time.perf_counter() - start) * 1000)
            out[engine] = min(times)
        except Exception as exc:  # an engine that fails here is not a candidate, whatever the reason
            log.info("ocr engine %s cannot run here: %s", engine, exc)
            out[engine] = None
    return out


def choose_engine(
    asked: str | None,
    threads: int,
    use_cuda: bool,
    build: Callable[[str], Any],
    read: Callable[[Any, Any], list[str]],
) -> str:
    """The engine to read with: the one asked for, else (auto) the one measured fastest here among
    those that read the check photo right (measured once, remembered)."""
    wanted = (asked or get_settings().engine).lower()
    if wanted in ENGINES:
        return wanted
    if use_cuda or not is_installed("openvino"):
        return "onnxruntime"
    known = remembered(threads)
    if known is not None:
        return known
    log.warning(
        "pixelsift: measuring ONNX Runtime and OpenVINO for reading text on this machine (once, a few "
        "seconds; remembered; --engine onnxruntime or openvino skips it)"
    )
    timings = measure(build, read)
    usable = {engine: ms for engine, ms in timings.items() if ms is not None}
    engine = min(usable, key=lambda e: usable[e]) if usable else "onnxruntime"
    shown = ", ".join(f"{e} {'-' if ms is None else f'{ms:.0f} ms'}" for e, ms in timings.items())
    log.warning("pixelsift: text is read with %s here (%s)", engine, shown)
    key = _key(threads)
    try:
        write_json(_path(key), {"key": key, "engine": engine, "ms": timings})
    except OSError as exc:  # a read-only home: the choice holds for this process only
        log.warning("could not remember the OCR engine choice (%s)", exc)
    return engine
