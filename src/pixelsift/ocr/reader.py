"""`TextReader`: the text in photos, read by PP-OCR's networks through `rapidocr` on ONNX Runtime.

Why rapidocr: its wheel ships PP-OCRv6's text detector (9.9 MB) and recogniser (21 MB) and the
line-angle classifier (0.6 MB) as ONNX files, so reading works offline; it reads signs on photos,
receipts, screenshots and documents, and is 6-7x faster than EasyOCR at the same accuracy (Tesseract
misses text on photos). See the README's "Search by the text in photos".

How a photo is read:
1. it is decoded upright (EXIF orientation applied), JPEGs at no more than twice `READ_SIZE`;
2. the text detector looks at it with its longest side at `detect_size` pixels (960 by default: a
   photo without text costs one small network pass; PP-OCR's own default, the shorter side at
   736 or more, costs 3-6x as much and found no more text on our test photos);
3. the recogniser reads only where text was found, from the photo at up to 2000 pixels; lines at 180
   degrees are turned by the angle classifier, vertical ones (text at 90 or 270 degrees) before it;
4. a line is kept when the recogniser is at least `min_score` sure of it and it has at least
   `min_chars` letters or digits: photos without text sometimes give one stray character or a row of
   symbols, and this removes them while keeping real words.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pixelsift.config import get_settings
from pixelsift.core.optional import optional_import
from pixelsift.core.progress import progress_bar
from pixelsift.errors import ImageError, UsageError
from pixelsift.imaging.images import expand_inputs, open_image
from pixelsift.imaging.pipeline import default_decode_workers, iter_computed
from pixelsift.ocr.engines import choose_engine
from pixelsift.ocr.results import (
    Quad,
    TextLine,
    TextReading,
    TextReadings,
    TextWord,
    box_of,
    reading_order,
)
from pixelsift.runtime.options import RunOptions

log = logging.getLogger("pixelsift")

READ_SIZE = 1000  # JPEGs are decoded at no less than this shorter side (draft scaling above twice that)
DETECT_SIZE = 960
MIN_SCORE = 0.8
MIN_CHARS = 2
PURPOSE = "reading the text in photos (OCR)"

Inputs = str | os.PathLike[str] | Sequence[str | os.PathLike[str] | ImageError]


def _count_alnum(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _quad(points: Any, scale: float) -> Quad:
    p = [(float(x) * scale, float(y) * scale) for x, y in np.asarray(points, dtype=np.float64)[:4]]
    return (p[0], p[1], p[2], p[3])


def _bgr(image: Any) -> np.ndarray:
    """A `PIL.Image` as the (H, W, 3) uint8 BGR array rapidocr reads: one copy out of Pillow and one
    channel swap by OpenCV (numpy's reversed view made contiguous, after Pillow's own RGB copy, took
    three times as long: 36 ms for a 2000 x 1500 decode)."""
    import cv2  # rapidocr's own dependency: present wherever the reader runs

    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


class _DetectorInput:
    """The text detector's input as rapidocr's `DetPreProcess` makes it (its resize, then (x / 255 -
    mean) / std, channels first), normalised by OpenCV's `blobFromImage` in float32: the same values
    to 1e-7, in 5 ms instead of rapidocr's 35 ms of float64 numpy for a 960 x 704 photo on 2 cores
    (15% of a photo's whole reading). Per-channel scales rapidocr might use are left to it."""

    def __init__(self, default: Any):
        self.default = default
        self.std = np.asarray(default.std, np.float64).reshape(-1)
        self.mean = np.asarray(default.mean, np.float64).reshape(-1)

    def __call__(self, bgr: np.ndarray) -> np.ndarray | None:
        if not np.allclose(self.std, self.std[0]) or len(self.mean) != 3:
            return self.default(bgr)
        resized = self.default.resize(bgr)
        if resized is None:
            return None
        import cv2  # rapidocr's own dependency: present wherever the reader runs

        scale = float(self.default.scale) / float(self.std[0])
        mean = tuple(float(m) / float(self.default.scale) for m in self.mean)
        return cv2.dnn.blobFromImage(resized, scalefactor=scale, mean=mean)


def _fast_detector_input(pipeline: Any) -> None:
    """Give a rapidocr pipeline's text detector `_DetectorInput`; a rapidocr whose detector is laid out
    otherwise keeps its own preprocessing."""
    load = getattr(pipeline, "_load_det_model", None)
    detector = load() if callable(load) else None
    make = getattr(detector, "get_preprocess", None)
    if not callable(make):
        return
    if all(hasattr(make(), name) for name in ("resize", "mean", "std", "scale")):
        # made at each call, as rapidocr does, so a changed detector size is followed
        detector.get_preprocess = lambda: _DetectorInput(make())  # type: ignore[union-attr]


def _use_cuda(run_options: RunOptions) -> bool:
    """Whether ONNX Runtime should read on the GPU: asked for (`--device cuda`), or `auto` with a CUDA
    build of ONNX Runtime that sees a GPU."""
    device = (run_options.device or get_settings().device).lower()
    if device == "cpu" or device.startswith(("mps", "xpu")):
        return False
    import onnxruntime  # imported by rapidocr anyway

    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if device.startswith("cuda") and not has_cuda:
        raise UsageError(
            "--device cuda: this ONNX Runtime has no CUDA provider; install onnxruntime-gpu to read "
            "on a GPU, or read on the CPU with --device cpu"
        )
    return has_cuda


class TextReader:
    """Reads the text in photos; load once, read many.

    >>> reader = TextReader()                                      # doctest: +SKIP
    >>> [line.text for line in reader.read_file("receipt.jpg").lines]  # doctest: +SKIP
    ['GROCERY MART', 'Milk 2% 1.29', 'TOTAL 21.87']
    """

    name = "rapidocr-ppocrv6"

    def __init__(
        self,
        run_options: RunOptions | None = None,
        *,
        min_score: float = MIN_SCORE,
        min_chars: int = MIN_CHARS,
        detect_size: int = DETECT_SIZE,
    ):
        if not 0.0 <= min_score <= 1.0:
            raise UsageError(f"min_score must be between 0 and 1, not {min_score}")
        if min_chars < 1:
            raise UsageError(f"min_chars must be at least 1, not {min_chars}")
        if not 160 <= detect_size <= 4096:
            raise UsageError(f"detect_size must be between 160 and 4096 pixels, not {detect_size}")
        self.run_options = run_options or RunOptions()
        self.min_score, self.min_chars, self.detect_size = min_score, min_chars, detect_size
        optional_import("onnxruntime", "onnxruntime", "ocr", PURPOSE)
        self._rapidocr = optional_import("rapidocr", "rapidocr", "ocr", PURPOSE)
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self._threads = self.run_options.threads or get_settings().threads or -1
        self._cuda = _use_cuda(self.run_options)
        if self.run_options.engine == "openvino":
            optional_import("openvino", "openvino", "openvino", PURPOSE + " with --engine openvino")
        self.engine = choose_engine(
            self.run_options.engine, self._threads, self._cuda, self._build, self._check_read
        )
        self._engine = self._build(self.engine)
        # rapidocr keeps per-call settings on the engine: one reading at a time (its networks use every
        # thread they are given)
        self._lock = threading.Lock()

    def _build(self, engine: str) -> Any:
        """A rapidocr pipeline whose three networks run on `engine` ("onnxruntime" or "openvino")."""
        kind = self._rapidocr.EngineType(engine)
        params: dict[str, Any] = {
            "Global.log_level": "error",
            "Global.return_word_box": True,
            "Global.text_score": 0.0,  # filtered here, by `min_score` and `min_chars`
            "Det.limit_type": "max",
            "Det.limit_side_len": self.detect_size,
            "Det.engine_type": kind,
            "Cls.engine_type": kind,
            "Rec.engine_type": kind,
            "EngineConfig.onnxruntime.intra_op_num_threads": self._threads,
            "EngineConfig.onnxruntime.use_cuda": self._cuda,
            "EngineConfig.openvino.inference_num_threads": self._threads,
        }
        pipeline = self._rapidocr.RapidOCR(params=params)
        _fast_detector_input(pipeline)
        return pipeline

    def _check_read(self, engine: Any, image: Any) -> list[str]:
        """The lines `engine` reads in `image`, kept as `read_image` keeps them (engine measurement)."""
        return [line.text for line in self._lines(engine(_bgr(image)), 1.0)]

    def describe(self) -> str:
        return (
            f"{self.name} on {self.engine} (text detector at {self.detect_size} px, lines scored >= "
            f"{self.min_score})"
        )

    # ------------------------------------------------------------------------------------ one photo
    def read_image(self, image: Any) -> list[TextLine]:
        """The lines of text in a decoded photo (a `PIL.Image`, RGB, upright), in reading order, with
        coordinates in the photo's full-size pixels (`image.info["full_size"]` when it was decoded
        smaller)."""
        return self.read_pixels(*self.pixels(image))

    @staticmethod
    def pixels(image: Any) -> tuple[np.ndarray, float]:
        """What `read_pixels` takes for a decoded photo: its BGR array and the factor to its full size
        (thread-safe: callers prepare it in their decoding threads)."""
        full_width, _ = image.info.get("full_size", image.size)
        return _bgr(image), (full_width / image.width if image.width else 1.0)

    def read_pixels(self, bgr: np.ndarray, scale: float = 1.0) -> list[TextLine]:
        """The lines in an (H, W, 3) uint8 BGR array; coordinates multiplied by `scale`."""
        with self._lock:
            result = self._engine(bgr)
        return self._lines(result, scale)

    def _lines(self, result: Any, scale: float) -> list[TextLine]:
        """rapidocr's output as kept lines (`min_score`, `min_chars`) in reading order."""
        texts = getattr(result, "txts", None) or ()
        if not texts:
            return []
        words_of = getattr(result, "word_results", ()) or ()
        lines: list[TextLine] = []
        for i, (text, score, points) in enumerate(zip(texts, result.scores, result.boxes, strict=True)):
            text = str(text).strip()
            if float(score) < self.min_score or _count_alnum(text) < self.min_chars:
                continue
            words = tuple(
                TextWord(str(w), float(s), box_of((np.asarray(b, dtype=np.float64) * scale).tolist()))
                for w, s, b in (words_of[i] if i < len(words_of) else ())
                if b is not None and str(w).strip()
            )
            lines.append(TextLine(text, float(score), _quad(points, scale), words))
        return reading_order(lines)

    def read_file(self, path: str | os.PathLike[str]) -> TextReading:
        """The text of one photo file (an unreadable one comes back with `error` set)."""
        return next(self.iter_read([path]))

    # ---------------------------------------------------------------------------------- many photos
    def iter_read(
        self,
        inputs: Inputs,
        progress: bool | None = False,
        total: int | None = None,
        keep_images: bool = False,
    ) -> Iterator[TextReading]:
        """One `TextReading` per photo of files, folders (recursive) or glob patterns, in order, in
        constant memory; photos are decoded in threads while the networks read the one before.
        `keep_images`: each reading keeps its decoded photo (`image`, for drawing)."""
        items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
        sources = expand_inputs(items)

        def decode(path: str) -> tuple[np.ndarray, tuple[int, int, float, Any]]:
            img = open_image(path, min_size=READ_SIZE)
            width, height = img.info.get("full_size", img.size)
            bgr, scale = self.pixels(img)
            return bgr, (int(width), int(height), scale, img if keep_images else None)

        def compute(pixels: Sequence[np.ndarray]) -> list[list[TextLine]]:
            return [self.read_pixels(p) for p in pixels]

        workers = self.run_options.workers or default_decode_workers()
        batches = iter_computed(sources, decode, compute, batch_size=1, streams=1, workers=workers)
        with progress_bar(total=total, desc="ocr", enabled=progress) as bar:
            for batch, computed in batches:
                for item in batch.items:
                    if not item.ok:
                        yield TextReading(item.path, error=item.error)
                        continue
                    width, height, scale, image = item.info
                    lines = computed[item.row]
                    if scale != 1.0:
                        lines = [line.scaled(scale) for line in lines]
                    yield TextReading(item.path, lines, width, height, image=image)
                bar.update(len(batch.items))


def read_text(
    inputs: Inputs,
    progress: bool | None = False,
    run_options: RunOptions | None = None,
    *,
    min_score: float = MIN_SCORE,
    detect_size: int = DETECT_SIZE,
) -> TextReadings:
    """The text in files, folders or glob patterns: one `TextReading` per photo, in order (a list;
    `.to_pandas()` gives one row per line).

    >>> from pixelsift.ocr import read_text
    >>> readings = read_text("receipts/")                     # doctest: +SKIP
    >>> readings[0].text                                      # doctest: +SKIP
    'GROCERY MART\\nTOTAL 21.87'
    >>> readings.to_pandas()[["path", "text", "score"]]       # doctest: +SKIP
    """
    reader = TextReader(run_options, min_score=min_score, detect_size=detect_size)
    return TextReadings(reader.iter_read(inputs, progress=progress))
