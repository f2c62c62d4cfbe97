"""What reading the text costs per photo, against the classifier alone, in one run.

    python benchmarks/bench_ocr.py [--photos 12] [--rounds 3] [--size 4000x3000]

Two folders of generated JPEGs at a camera's size: photo-like scenes without text (bench_detect's
`generate_photos`) and the same kind of photo with a sign of eight lines on it (a receipt-like block of
words, numbers and prices). Timed per photo, decode included, the methods taking turns over `--rounds`:
  classifier    `Classifier("efficientnet_lite0").iter_classify(folder)` (the index's default model)
  ocr           `TextReader().iter_read(folder)`: text detector at 960 px, recognition where it found
                text, on the engine `--engine auto` chose here (printed)
  ocr-ort       the same on ONNX Runtime (rapidocr's own engine)
  ocr-736-min   ONNX Runtime with PP-OCR's own default detector size (shorter side 736 or more), to
                show what reading at a reduced size saves
  ocr-N         with --detect-sizes N,...: the reader with its text detector at N px
  ocr-before    the reader as it was before its detector input and BGR copy were made by OpenCV:
                rapidocr's own float64 normalisation and a three-copy PIL-to-BGR conversion
Prints the CPU flags, ms per photo, each method's cost over the classifier's (the issue's target: a
photo without text at most 3x), and how many of the sign's lines were read (8 of 8 expected).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import generate_photos  # photo-like JPEGs, shared with the detection benchmark

SIGN = ["GROCERY MART", "Milk 1.29", "Bread rye 3.49", "Eggs dozen 4.10", "Coffee beans 12.99"]
SIGN += ["TOTAL 21.87", "VISA 1234", "Thank you"]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    return ImageFont.truetype(str(dejavu), size) if dejavu.exists() else ImageFont.load_default(size)


def with_sign(photos: list[Path], folder: Path) -> list[Path]:
    """The same photos, each with the sign drawn on it (letters about 2% of the photo's height)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in photos:
        img = Image.open(path).convert("RGB")
        width, height = img.size
        draw = ImageDraw.Draw(img)
        step = height // 30
        left, top = width // 3, height // 6
        draw.rectangle(
            (left - step, top - step, left + width // 3, top + step * (len(SIGN) + 1)), fill=(245, 245, 240)
        )
        letters = font(int(step * 0.7))
        for i, line in enumerate(SIGN):
            draw.text((left, top + i * step), line, fill=(15, 15, 15), font=letters)
        target = folder / path.name
        img.save(target, quality=90)
        out.append(target)
    return out


def methods(sizes: list[int]) -> dict[str, Callable[[Path], int]]:
    from pixelsift.ocr import TextReader
    from pixelsift.runtime.classify import Classifier
    from pixelsift.runtime.options import RunOptions

    classifier = Classifier("efficientnet_lite0")
    reader = TextReader()
    print(f"ocr: {reader.describe()}")
    ort = TextReader(RunOptions(engine="onnxruntime"))
    full = TextReader(RunOptions(engine="onnxruntime"))
    full._engine.cfg.Det.limit_type = "min"  # PP-OCR's default: the shorter side at 736 or more
    full._engine.cfg.Det.limit_side_len = 736
    if full._engine.text_det is not None:
        full._engine.text_det = None

    before = TextReader()
    detector = before._engine.text_det
    detector.get_preprocess = lambda: type(detector).get_preprocess(detector)  # rapidocr's own input

    def read_as_before(folder: Path) -> int:
        from pixelsift.ocr import reader as module

        fast_bgr = module._bgr
        module._bgr = lambda image: np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        try:
            return sum(len(r.lines) for r in before.iter_read(folder))
        finally:
            module._bgr = fast_bgr

    def classify(folder: Path) -> int:
        return sum(1 for _ in classifier.iter_classify(folder))

    def read(reader_: TextReader) -> Callable[[Path], int]:
        def run(folder: Path) -> int:
            return sum(len(r.lines) for r in reader_.iter_read(folder))

        return run

    smaller = {f"ocr-{size}": read(TextReader(detect_size=size)) for size in sizes}
    return {
        "classifier": classify,
        "ocr": read(reader),
        "ocr-before": read_as_before,
        **smaller,
        "ocr-ort": read(ort),
        "ocr-736-min": read(full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument(
        "--detect-sizes", default="", help="more rows: the reader at these detector sizes, e.g. 800,640"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    import torch

    from pixelsift.runtime.device import detect_cpu_features

    print(
        f"CPU features: {detect_cpu_features().describe()}; {os.cpu_count()} CPUs; torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        plain = generate_photos(Path(tmp) / "plain", args.photos, (width, height))
        signs = with_sign(plain, Path(tmp) / "signs")
        folders = {"without text": plain[0].parent, "with a sign": signs[0].parent}
        run = methods([int(v) for v in args.detect_sizes.split(",") if v])
        for folder in folders.values():  # warm-up: models loaded, engines measured
            for method in run.values():
                method(folder)
        times = {(m, f): 0.0 for m in run for f in folders}
        lines: dict[tuple[str, str], int] = {}
        for _ in range(args.rounds):
            for label, folder in folders.items():
                for name, method in run.items():
                    start = time.perf_counter()
                    lines[(name, label)] = method(folder)
                    times[(name, label)] += time.perf_counter() - start
    count = args.photos * args.rounds
    print(f"{args.photos} photos of {width}x{height}, {args.rounds} rounds; ms per photo, decode included")
    print(f"{'method':<12} {'photos':<13} {'ms/photo':>9} {'x classifier':>13} {'lines/photo':>12}")
    for label in folders:
        base = times[("classifier", label)] / count
        for name in run:
            ms = times[(name, label)] / count
            read = "" if name == "classifier" else f"{lines[(name, label)] / args.photos:.1f}"
            print(f"{name:<12} {label:<13} {ms * 1000:9.1f} {ms / base:13.2f} {read:>12}")


if __name__ == "__main__":
    main()
