"""A detector loaded once and run over many photos: the one path every detection backend shares.

A backend (ultralytics YOLO, torchvision, OpenCV DNN) subclasses `Detector` with three steps:
`prepare` (RGB image -> network input; runs in the decoding threads), `infer` (a batch through the
network) and `postprocess` (one image's raw output -> `Detections` in the prepared image's pixels).
Threaded decoding, timing, rescaling to the original photo, clipping, class filtering and reporting
unreadable inputs in place all live here, once.
"""

from __future__ import annotations

import difflib
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.progress import progress_bar
from pixelsift.detect.detections import DetectionResult, Detections
from pixelsift.detect.video import iter_frames
from pixelsift.errors import ImageError, UsageError
from pixelsift.imaging.images import _to_rgb, expand_inputs, image_extensions, open_image
from pixelsift.imaging.pipeline import default_decode_workers, iter_computed, stack
from pixelsift.models.categories import BACKGROUND, UNUSED
from pixelsift.models.records import DetectorSpec
from pixelsift.models.vocabulary import Vocabulary
from pixelsift.runtime.options import RunOptions

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("pixelsift")

Inputs = str | os.PathLike[str] | Iterable[str | os.PathLike[str] | ImageError]
MAX_DETECTIONS = 300  # per image, as ultralytics


def class_names_for(word: str, known: set[str]) -> set[str]:
    """The classes of `known` a word means, as search understands it: "people" -> person, "dogs" -> dog,
    "animal" -> every animal class, "sofa" -> couch (WordNet, `models.vocabulary`)."""
    vocab = Vocabulary.load()
    meaning = vocab.lookup(word)
    if meaning is None:
        return set()
    # first senses and close ones ("bike": motorcycle, and bicycle at 0.5)
    return {name for name, weight in vocab.coco_weights(meaning).items() if weight >= 0.5 and name in known}


def check_thresholds(conf: float, iou: float) -> None:
    if not 0.0 <= conf <= 1.0:
        raise UsageError(f"--conf must be between 0 and 1, not {conf}")
    if not 0.0 < iou <= 1.0:
        raise UsageError(f"--iou must be above 0 and at most 1, not {iou}")


def prepare_nms() -> None:
    """Import what `nms` uses (torch and torchvision, seconds on a small CPU) when a detector is made,
    so that the first image's post-processing time is its own."""
    import torch  # noqa: F401
    from torchvision.ops import batched_nms  # noqa: F401


@dataclass
class Prepared:
    """What `prepare` made of one image, besides its pixels."""

    full_size: tuple[int, int]  # the photo's own (width, height): boxes are reported in it
    decoded_size: tuple[int, int]  # the decoded image's size (smaller after JPEG draft decoding)
    meta: Any  # the backend's note to itself (e.g. letterbox scale and padding)
    preprocess_ms: float
    image: Image.Image | None = None


class Detector:
    """A loaded object detector. Subclasses implement `prepare`, `infer` and `postprocess`.

    >>> detector = load_detector("ssd_mobilenet_v2_coco", conf=0.3)          # doctest: +SKIP
    >>> detector.detect_image(open_image("samples/astronaut.png")).summary()  # doctest: +SKIP
    '1 person'
    >>> for r in detector.iter_detect("holiday/"):                          # doctest: +SKIP
    ...     print(r.path, r.summary())
    """

    def __init__(
        self,
        spec: DetectorSpec,
        categories: Sequence[str],
        conf: float = 0.25,
        iou: float = 0.45,
        batch_size: int = 1,
        decode_size: int | None = None,
        runs_on: str = "",
        decode_fit: int | None = None,
        run_options: RunOptions | None = None,
    ):
        check_thresholds(conf, iou)
        prepare_nms()
        self.run_options = run_options or RunOptions()
        self.spec = spec
        self.categories = tuple(categories)
        self.conf = float(conf)
        self.iou = float(iou)
        self.batch_size = batch_size
        # What the network needs, so larger JPEGs decode in draft mode (several times faster):
        self.decode_size = decode_size  # the smaller side, for networks that resize it to a size
        self.decode_fit = decode_fit  # the longer side, for networks that letterbox into a square
        self.max_det = MAX_DETECTIONS
        self.runs_on = runs_on
        self.agnostic = False  # class-agnostic NMS; read at post-processing time, like conf and iou

    @property
    def name(self) -> str:
        return self.spec.name

    def describe(self) -> str:
        return f"{self.name}: {self.runs_on}" if self.runs_on else self.name

    @property
    def engine(self) -> str | None:
        """The engine the network runs on ("torch", "onnxruntime", "openvino", "opencv"), as
        classifiers report theirs (`ImageModel.engine`); None when the backend does not say."""
        return getattr(getattr(self, "runner", None), "engine", None) or self.backend_engine

    @property
    def precision(self) -> str | None:
        """The precision the network runs in ("fp32", "bf16" ...); None when the backend does not say."""
        return getattr(getattr(self, "runner", None), "precision", None) or self.backend_precision

    # what a backend without a pixelsift runner runs on (OpenCV DNN: its own engine, fp32)
    backend_engine: str | None = None
    backend_precision: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} conf={self.conf} iou={self.iou}>"

    # The three backend steps ------------------------------------------------------------------------

    # Whether images can share a forward pass; `prepare(batched=True)` then makes one input shape.
    batchable = True
    # Whether several threads may run the network at once (torch: yes; an OpenCV DNN net: no).
    concurrent = True
    # Whether `self.runner` was built by `runtime.engines.create_runner`, which planned its streams,
    # threads and decode workers (what `--engine auto` measured fastest): `thread_plan` keeps that plan.
    planned_runner = False

    def thread_plan(self) -> Any:
        """How `iter_detect` spreads the work over the CPUs (`runtime.device.plan_threads`): streams
        that each decode and run their own images, each with its share of the compute threads; a
        network that cannot run in two threads at once gets one stream fed by decode threads."""
        from pixelsift.runtime.device import ThreadPlan, default_threads, plan_threads  # imports torch

        options = self.run_options
        runner = getattr(self, "runner", None)
        if self.planned_runner and runner is not None:
            return ThreadPlan(streams=runner.streams, threads=runner.threads, workers=runner.workers)
        if not self.concurrent or runner is None:
            workers = options.workers or default_decode_workers()
            return ThreadPlan(streams=1, threads=options.threads or default_threads(), workers=workers)
        plan = plan_threads(runner.device, options.threads, options.streams, options.workers)
        runner.threads = plan.threads  # the runner sets torch's thread count to it before each batch
        return plan

    def prepare(self, image: Image.Image, batched: bool) -> tuple[np.ndarray, Any]:
        """RGB image -> (network input CHW float32, meta for `postprocess`). Runs in decoding threads.
        `batched`: the input will share a batch, so it must have the backend's one batch shape."""
        raise NotImplementedError

    def infer(self, pixels: np.ndarray) -> Sequence[Any]:
        """A batch (N, C, H, W) -> one raw output per image."""
        raise NotImplementedError

    def postprocess(self, raw: Any, meta: Any, size: tuple[int, int]) -> Detections:
        """One image's raw output -> Detections in the pixels of the image `prepare` saw (`size`)."""
        raise NotImplementedError

    # Shared machinery --------------------------------------------------------------------------------

    def warmup(self) -> None:
        """Run one blank image through every step, so first-call costs (lazy imports, kernel selection,
        graph planning) stay out of the timings of real photos."""
        from PIL import Image

        image_extensions()  # decoding's own first use: registers the HEIC opener when installed
        side = self.decode_fit or self.decode_size or 64
        self.detect_image(Image.new("RGB", (side, side), (114, 114, 114)))

    @property
    def class_names(self) -> list[str]:
        """The classes this detector can report."""
        return [c for c in dict.fromkeys(self.categories) if c not in (UNUSED, BACKGROUND)]

    def check_classes(self, classes: Iterable[str] | None) -> frozenset[str] | None:
        """The class filter as a set, after checking every name is one this detector knows."""
        if classes is None:
            return None
        known = set(self.class_names)
        wanted: set[str] = set()
        unknown: list[str] = []
        for name in dict.fromkeys(c.strip() for c in classes if c.strip()):
            meant = set() if name in known else class_names_for(name, known)
            if name in known:
                wanted.add(name)
            elif meant:
                wanted |= meant
            else:
                unknown.append(name)
        if unknown:
            hints = difflib.get_close_matches(unknown[0], sorted(known), n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(hints)}?" if hints else ""
            raise UsageError(
                f"{self.name} does not detect {', '.join(map(repr, unknown))}.{hint} "
                f"It knows: {', '.join(self.class_names)}"
            )
        return frozenset(wanted)

    def _prepare(
        self,
        image: Image.Image,
        keep_image: bool,
        batched: bool = False,
        full_size: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, Prepared]:
        """`full_size`: the photo's size when `image` is a reduced (draft) decode of it."""
        start = time.perf_counter()
        rgb = image if image.mode == "RGB" else _to_rgb(image)
        full_w, full_h = full_size or rgb.size
        pixels, meta = self.prepare(rgb, batched)
        elapsed = (time.perf_counter() - start) * 1000
        kept = rgb if keep_image else None
        return pixels, Prepared((int(full_w), int(full_h)), rgb.size, meta, elapsed, kept)

    def _decode(self, path: str, keep_image: bool, batched: bool) -> tuple[np.ndarray, Prepared]:
        start = time.perf_counter()
        # A photo kept for drawing is decoded at full size; otherwise large JPEGs decode in draft mode.
        if keep_image:
            img = open_image(path)
        else:
            img = open_image(path, min_size=self.decode_size, fit=self.decode_fit)
        decode_ms = (time.perf_counter() - start) * 1000
        pixels, prepared = self._prepare(img, keep_image, batched, img.info.get("full_size"))
        prepared.preprocess_ms += decode_ms
        return pixels, prepared

    def _finish(self, raw: Any, prepared: Prepared, classes: frozenset[str] | None) -> Detections:
        dets = self.postprocess(raw, prepared.meta, prepared.decoded_size)
        (full_w, full_h), (dec_w, dec_h) = prepared.full_size, prepared.decoded_size
        if (full_w, full_h) != (dec_w, dec_h):
            dets = dets.scaled(full_w / dec_w, full_h / dec_h)
        dets = dets.clipped(full_w, full_h)
        return dets.filter(classes=classes) if classes is not None else dets

    def detect_image(self, image: Image.Image, classes: Iterable[str] | None = None) -> Detections:
        """The objects in one in-memory image (any Pillow mode; boxes in its pixels)."""
        wanted = self.check_classes(classes)
        pixels, prepared = self._prepare(image, keep_image=False)
        raw = self.infer(pixels[None])[0]
        return self._finish(raw, prepared, wanted)

    def detect_images(
        self, images: Sequence[Image.Image], classes: Iterable[str] | None = None
    ) -> list[Detections]:
        """The objects in several in-memory images, through the network in batches of `batch_size` (one
        at a time for a detector that is not `batchable`); boxes in each image's pixels."""
        batched = self.batchable and self.batch_size > 1
        return self.detect_prepared(
            [self._prepare(image, keep_image=False, batched=batched) for image in images], classes
        )

    def prepare_input(self, image: Image.Image) -> tuple[np.ndarray, Prepared]:
        """One decoded photo -> its network input, and what `detect_prepared` needs to finish it. Boxes
        come back in the pixels of `image.info["full_size"]` (a JPEG draft decode's photo size) when the
        image has one, else in its own. Safe to call in decoding threads, while the network runs."""
        batched = self.batchable and self.batch_size > 1
        return self._prepare(image, keep_image=False, batched=batched, full_size=image.info.get("full_size"))

    def detect_prepared(
        self, inputs: Sequence[tuple[np.ndarray, Prepared]], classes: Iterable[str] | None = None
    ) -> list[Detections]:
        """The objects in photos already through `prepare_input`, in batches of `batch_size` (one at a
        time for a detector that is not `batchable`)."""
        wanted = self.check_classes(classes)
        size = max(1, self.batch_size) if self.batchable else 1
        out: list[Detections] = []
        for start in range(0, len(inputs), size):
            chunk = inputs[start : start + size]
            # same-shape inputs as one array; a list where the backend keeps each image's own size
            batch: Any = stack([pixels for pixels, _ in chunk]) if size > 1 else chunk[0][0][None]
            raws = self.infer(batch)
            out += [
                self._finish(raw, prepared, wanted) for raw, (_, prepared) in zip(raws, chunk, strict=True)
            ]
        return out

    def detect_result(
        self, image: Image.Image, path: str = "image", classes: Iterable[str] | None = None
    ) -> DetectionResult:
        """One in-memory image -> a `DetectionResult` with its size and per-stage timings (what the
        CLI's JSON holds for one file; the web API answers with it)."""
        return self.detect_frame(image, path, None, self.check_classes(classes), keep_image=False)

    def detect_frame(
        self,
        image: Image.Image,
        path: str,
        frame: int | None,
        classes: frozenset[str] | None,
        keep_image: bool,
    ) -> DetectionResult:
        """One video frame (already decoded) -> a result carrying its frame number."""
        pixels, prepared = self._prepare(image, keep_image)
        start = time.perf_counter()
        raw = self.infer(pixels[None])[0]
        inference_ms = (time.perf_counter() - start) * 1000
        return self._result(path, raw, prepared, classes, inference_ms, frame=frame)

    def _result(
        self,
        path: str,
        raw: Any,
        prepared: Prepared,
        classes: frozenset[str] | None,
        inference_ms: float,
        frame: int | None = None,
    ) -> DetectionResult:
        start = time.perf_counter()
        dets = self._finish(raw, prepared, classes)
        post_ms = (time.perf_counter() - start) * 1000
        width, height = prepared.full_size
        return DetectionResult(
            path,
            width,
            height,
            dets,
            speed_ms={
                "preprocess": prepared.preprocess_ms,
                "inference": inference_ms,
                "postprocess": post_ms,
            },
            frame=frame,
            image=prepared.image,
        )

    def iter_detect(
        self,
        inputs: Inputs,
        classes: Iterable[str] | None = None,
        progress: bool | None = False,
        total: int | None = None,
        keep_images: bool = False,
    ) -> Iterator[DetectionResult]:
        """One `DetectionResult` per input, in order, as soon as its batch is done (constant memory).

        `inputs`: files, folders (recursive), glob patterns, or an iterable of them. Unreadable inputs
        come back as results with `.error` set. `keep_images=True` keeps each decoded photo (full size)
        on its result, for drawing. Batch size and decode workers come from the detector's run options.
        """
        wanted = self.check_classes(classes)
        batch_size = self.run_options.batch_size
        if batch_size is not None and batch_size > 1 and not self.batchable:
            log.info("detect: %s runs one image per forward pass; --batch-size ignored", self.name)
        size = (batch_size or self.batch_size) if self.batchable else 1
        items = [inputs] if isinstance(inputs, str | os.PathLike) else inputs
        sources = expand_inputs(items)

        def decode(path: str) -> tuple[np.ndarray, Prepared]:
            return self._decode(path, keep_images, batched=size > 1)

        def infer(pixels: np.ndarray) -> tuple[Sequence[Any], float]:
            start = time.perf_counter()
            raws = self.infer(pixels)
            return raws, (time.perf_counter() - start) * 1000 / len(pixels)

        plan = self.thread_plan()
        batches = iter_computed(
            sources, decode, infer, batch_size=size, streams=plan.streams, workers=plan.workers
        )
        with progress_bar(total=total, desc="detect", enabled=progress) as bar:
            for batch, computed in batches:
                raws, inference_ms = computed if computed is not None else ((), 0.0)
                for item in batch.items:
                    if not item.ok:
                        yield DetectionResult(item.path, error=item.error)
                    else:
                        yield self._result(item.path, raws[item.row], item.info, wanted, inference_ms)
                bar.update(len(batch.items))

    def detect(self, inputs: Inputs, classes: Iterable[str] | None = None) -> list[DetectionResult]:
        """All results in a list (use `iter_detect` for large folders)."""
        return list(self.iter_detect(inputs, classes=classes))

    def iter_detect_video(
        self,
        path: str | os.PathLike[str],
        vid_stride: int = 1,
        classes: Iterable[str] | None = None,
        keep_images: bool = False,
    ) -> Iterator[DetectionResult]:
        """One result per sampled frame of a video file (every `vid_stride`-th frame, from frame 0)."""
        wanted = self.check_classes(classes)
        for index, frame in iter_frames(path, vid_stride):
            yield self.detect_frame(frame, str(path), index, wanted, keep_images)
