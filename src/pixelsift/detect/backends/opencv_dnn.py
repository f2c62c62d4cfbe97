"""Detectors in the user's own model files, run by OpenCV's dnn module: TensorFlow graphs and ONNX files.

(The packaged `ssd_mobilenet_v2_coco` does not come here: it runs as a torch network,
`detect.backends.ssd_mobilenet`, and needs no OpenCV.)

- Any local `.pb` graph of TensorFlow's object-detection API (with its `.pbtxt` text graph beside it):
  output rows (image, class, score, x1, y1, x2, y2), class ids in COCO's 1-90 numbering. OpenCV 5
  removed its TensorFlow importer: there a `.pb` is one clear error naming the fix.
- Any local `.onnx` detector with a YOLO head (what `yolo export format=onnx` writes): output
  (4 + classes, anchors); class names from the file's metadata when the `onnx` package can read it.

OpenCV runs the network on a CUDA GPU when the runner's device is one and this OpenCV build has
CUDA; otherwise on the CPU, in fp32 (OpenCV has no bf16 path), with the runner's thread count.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.boxes import nms
from pixelsift.core.optional import OPENCV_4, import_cv2, is_installed, major_version
from pixelsift.detect.backends.yolo import decode_predictions, letterbox
from pixelsift.detect.detections import Detections
from pixelsift.detect.detector import Detector
from pixelsift.errors import ModelFileError, UsageError, short_reason
from pixelsift.models.categories import coco80, coco91
from pixelsift.models.families.ssd import SSD_INPUT
from pixelsift.models.records import DetectorSpec
from pixelsift.runtime.device import choose_precision, default_threads, resolve_device
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")


def configure_target(net: Any, run_options: RunOptions) -> str:
    """Put `net` on the options' device when OpenCV can use it; returns where it runs, in words."""
    cv2 = import_cv2()
    dev = resolve_device(run_options.device)
    prec, _ = choose_precision(run_options.precision, dev)
    if dev.type == "cuda" and cv2.cuda.getCudaEnabledDeviceCount() > 0:
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
        fp16 = prec in ("fp16", "bf16")
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA_FP16 if fp16 else cv2.dnn.DNN_TARGET_CUDA)
        return f"OpenCV DNN, device {dev}, precision {'fp16' if fp16 else 'fp32'}"
    if dev.type != "cpu":
        log.warning("OpenCV DNN: this OpenCV build cannot run on %s; running on the CPU", dev)
    # The CPU is OpenCV's default target (setting it again only draws a warning from OpenCV 5).
    count = run_options.threads or default_threads()
    cv2.setNumThreads(count)
    note = "" if prec == "fp32" else f" (OpenCV's CPU path has no {prec})"
    return f"OpenCV DNN, device cpu, precision fp32{note}, {count} threads"


class SsdDetector(Detector):
    """TensorFlow object-detection-API graphs: a fixed square input, NMS inside the graph."""

    backend_engine, backend_precision = "opencv", "fp32"

    concurrent = False  # one cv2.dnn.Net runs in one thread at a time

    def __init__(self, spec: DetectorSpec, net: Any, input_size: int, runs_on: str, **kwargs: Any):
        # Batches measured no faster per image on CPUs, and a short last batch makes OpenCV re-plan.
        super().__init__(
            spec, spec.categories, batch_size=1, decode_size=input_size, runs_on=runs_on, **kwargs
        )
        self.net = net
        self.input_size = input_size

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        import cv2

        size = (self.input_size, self.input_size)
        # cv2.dnn.blobFromImage's resize, done here in a decoding thread; the graph scales pixels itself.
        arr = cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32), None

    def infer(self, pixels: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(pixels)
        rows = self.net.forward().reshape(-1, 7)
        return [rows[rows[:, 0] == i] for i in range(len(pixels))]

    def postprocess(self, raw: np.ndarray, meta: Any, size: tuple[int, int]) -> Detections:
        rows = raw[raw[:, 2] >= self.conf]
        dets = Detections.from_opencv_ssd(rows, size[0], size[1], self.categories, image_id=None)
        return dets[nms(dets.boxes, dets.scores, dets.class_ids, self.iou, self.max_det, self.agnostic)]


class OnnxYoloDetector(Detector):
    """ONNX files with a YOLO head, letterboxed exactly like the ultralytics backend."""

    backend_engine, backend_precision = "opencv", "fp32"

    concurrent = False  # one cv2.dnn.Net runs in one thread at a time

    def __init__(self, spec: DetectorSpec, net: Any, imgsz: int, stride: int, runs_on: str, **kwargs: Any):
        super().__init__(spec, spec.categories, batch_size=1, decode_fit=imgsz, runs_on=runs_on, **kwargs)
        self.net = net
        self.imgsz = imgsz
        self.stride = stride

    def prepare(self, image: Any, batched: bool) -> tuple[np.ndarray, Any]:
        # Exported graphs usually have a fixed square input: always pad to it.
        return letterbox(np.asarray(image), self.imgsz, self.stride, rect=False)

    def infer(self, pixels: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(pixels)
        return list(self.net.forward())

    def postprocess(self, raw: np.ndarray, meta: Any, size: tuple[int, int]) -> Detections:
        return decode_predictions(
            raw, meta, self.conf, self.iou, self.max_det, self.categories, self.agnostic
        )


def _onnx_metadata(path: Path) -> dict[str, str]:
    """The file's metadata_props (ultralytics writes names, imgsz, stride there); {} without `onnx`."""
    if not is_installed("onnx"):
        return {}
    import onnx
    from google.protobuf.message import DecodeError  # protobuf comes with onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"{path}: not a readable ONNX model ({short_reason(exc)}); is the file complete?"
        ) from None
    return {p.key: p.value for p in model.metadata_props}


def _literal(text: str | None) -> Any:
    try:
        return ast.literal_eval(text) if text else None
    except (ValueError, SyntaxError):
        return None


def load_model_file(
    path: Path, run_options: RunOptions, conf: float = 0.25, iou: float = 0.45, imgsz: int | None = None
) -> Detector:
    """A local `.pb` (TensorFlow detection API, `.pbtxt` beside it) or `.onnx` (YOLO head) model file."""
    cv2 = import_cv2()
    if not path.is_file():
        raise UsageError(f"{path}: no such model file")
    thresholds: dict[str, Any] = {"conf": conf, "iou": iou, "run_options": run_options}
    if path.suffix.lower() == ".pb":
        config = _find_config(path)
        net = read_tensorflow(cv2, path, config)
        spec = DetectorSpec(
            name=str(path),
            backend="opencv_ssd",
            imgsz=imgsz or SSD_INPUT,
            source="file",
            description=f"TensorFlow detection graph {path.name} ({config.name}), COCO label map",
            licence="the model file's own",
            categories=coco91(),
        )
        runs_on = configure_target(net, run_options)
        return SsdDetector(spec, net, imgsz or SSD_INPUT, runs_on, **thresholds)
    meta = _onnx_metadata(path)
    size = imgsz or _first_int(_literal(meta.get("imgsz"))) or 640
    stride = int(_literal(meta.get("stride")) or 32)
    try:
        net = cv2.dnn.readNet(str(path))
    except cv2.error as exc:
        raise ModelFileError(f"{path}: OpenCV cannot read this ONNX model ({short_reason(exc)})") from None
    runs_on = configure_target(net, run_options)
    names = _literal(meta.get("names"))
    if isinstance(names, dict):
        categories = tuple(str(names[i]) for i in sorted(names))
    else:  # no metadata: learn the class count from one forward pass
        net.setInput(np.zeros((1, 3, size, size), np.float32))
        classes = int(net.forward().shape[1]) - 4
        categories = coco80() if classes == 80 else tuple(f"class_{i}" for i in range(classes))
    spec = DetectorSpec(
        name=str(path),
        backend="opencv_ssd",
        imgsz=size,
        source="file",
        description=f"ONNX detector {path.name} (YOLO head, {len(categories)} classes)",
        licence="the model file's own",
        categories=categories,
    )
    return OnnxYoloDetector(spec, net, size, stride, runs_on, **thresholds)


TF_IMPORTER_GONE = (
    "{path}: OpenCV {version} cannot read TensorFlow graphs (OpenCV 5 removed its TensorFlow importer); "
    f"install OpenCV 4 for .pb detectors: {OPENCV_4} "
    "(the packaged ssd_mobilenet_v2_coco needs no OpenCV: -m ssd_mobilenet_v2_coco)"
)


def read_tensorflow(cv2: Any, path: Path, config: Path) -> Any:
    """`cv2.dnn.readNet` of a TensorFlow graph, or a UsageError naming the fix on an OpenCV without the
    TensorFlow importer."""
    version = str(getattr(cv2, "__version__", "?"))
    if (major_version(version) or 0) >= 5:
        raise UsageError(TF_IMPORTER_GONE.format(path=path, version=version))
    try:
        return cv2.dnn.readNet(str(path), str(config))
    except cv2.error as exc:
        if "tensorflow" in str(exc).lower() and "importer" in str(exc).lower():
            raise UsageError(TF_IMPORTER_GONE.format(path=path, version=version)) from None
        raise UsageError(
            f"{path}: OpenCV could not read this TensorFlow graph ({short_reason(exc)})"
        ) from None


def _first_int(value: Any) -> int | None:
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    return int(value) if isinstance(value, int) else None


def _find_config(graph: Path) -> Path:
    """The text graph of a TensorFlow `.pb`: same name with `.pbtxt`, else the only `.pbtxt` beside it."""
    same = graph.with_suffix(".pbtxt")
    if same.is_file():
        return same
    found = sorted(graph.parent.glob("*.pbtxt"))
    if len(found) == 1:
        return found[0]
    raise UsageError(
        f"{graph}: OpenCV needs the graph's text description (.pbtxt) beside it; "
        f"put it at {same} (OpenCV's tf_text_graph_ssd.py makes one for detection-API graphs)"
    )
