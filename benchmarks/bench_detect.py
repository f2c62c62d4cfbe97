"""Detection speed and memory: pixelsift's YOLO path vs ultralytics' own predict loop, in one run.

    python benchmarks/bench_detect.py [--images 100] [--memory-counts 100 1000]

Speed: the same random `yolov8n.yaml` weights (seed 0) run over the same folder of generated 640x480
JPEGs by
  (a) ultralytics, a `model.predict(path)` call per photo (the loop users write),
  (b) ultralytics, `model.predict(folder, stream=True)` (its own streaming loader),
  (c) pixelsift, `load_detector("yolov8n").iter_detect(folder)` with the weights imported into a
      temporary cache (its load time is printed, and a ratio with it included).
Each runs once on two photos first (imports, first-call allocations), then the photos are processed
in interleaved rounds so other load on the machine hits all three alike. Prints images/s, the ratio
of (c) to the faster of (a) and (b), and the number of boxes each found.

Memory: `iter_detect` over 100 and over 1,000 small generated photos, each count in a fresh process
(YOLO at 160 px, to keep it quick); prints each run's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

os.environ.setdefault("YOLO_OFFLINE", "1")  # the reference must not phone home either
os.environ.setdefault("YOLO_VERBOSE", "False")


def generate_photos(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """JPEGs with noise and a few filled shapes, so decoding and the network see real content."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        arr = np.clip(rng.normal(120, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
            w, h = rng.integers(8, size[0] // 2), rng.integers(8, size[1] // 2)
            draw.rectangle((x, y, x + w, y + h), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        path = folder / f"photo_{i:05d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def random_weights(home: Path) -> tuple[object, Path]:
    """ultralytics' YOLO("yolov8n.yaml") with seed-0 random weights, and the same weights imported into
    a pixelsift cache (PIXELSIFT_HOME=home) with `models add`."""
    import torch
    from safetensors.torch import save_file
    from ultralytics import YOLO

    from pixelsift.cli import main as cli_main

    torch.manual_seed(0)
    model = YOLO("yolov8n.yaml")
    file = home / "yolov8n-random.safetensors"
    save_file({k: v.contiguous() for k, v in model.model.state_dict().items()}, str(file))
    os.environ["PIXELSIFT_HOME"] = str(home)
    if cli_main(["models", "add", "yolov8n", str(file)]) != 0:
        sys.exit("could not import the weights into the pixelsift cache")
    return model, file


def ultralytics_loop(model, photos: list[Path]) -> int:  # type: ignore[no-untyped-def]
    boxes = 0
    for path in photos:
        [result] = model.predict(str(path), verbose=False, conf=0.25, iou=0.45)
        boxes += len(result.boxes)
    return boxes


def ultralytics_stream(model, folder: Path) -> int:  # type: ignore[no-untyped-def]
    results = model.predict(str(folder), stream=True, verbose=False, conf=0.25, iou=0.45)
    return sum(len(r.boxes) for r in results)


def pixelsift_detect(detector, folder: Path) -> int:  # type: ignore[no-untyped-def]
    boxes = 0
    for result in detector.iter_detect(folder):
        if not result.ok or result.detections is None:
            sys.exit(f"{result.path}: {result.error}")
        boxes += len(result.detections)
    return boxes


def speed(images: int, work: Path, rounds: int) -> None:
    """The photos are split into `rounds` folders; each round runs the three methods on its folder in a
    rotating order, so load from other processes on the machine falls on all three alike."""
    import torch

    from pixelsift.detect import load_detector
    from pixelsift.runner import resolve_device

    per_round = -(-images // rounds)
    folders = []
    for r in range(rounds):
        count = min(per_round, images - r * per_round)
        generate_photos(work / "speed" / f"round_{r:02d}", count, (640, 480), seed=100 + r)
        folders.append(work / "speed" / f"round_{r:02d}")
    model, _ = random_weights(work)
    start = time.perf_counter()
    detector = load_detector("yolov8n", conf=0.25, iou=0.45)
    load_seconds = time.perf_counter() - start
    print(
        f"{images} generated 640x480 JPEGs in {rounds} rounds; yolov8n, random weights (seed 0); "
        f"device {resolve_device(None)}; torch threads {torch.get_num_threads()}"
    )
    warm = work / "warm"
    generate_photos(warm, 2, (640, 480), seed=2)
    ultralytics_loop(model, sorted(warm.glob("*.jpg")))
    ultralytics_stream(model, warm)
    pixelsift_detect(detector, warm)
    methods = {
        "(a) ultralytics model.predict(path) loop": lambda f: ultralytics_loop(
            model, sorted(f.glob("*.jpg"))
        ),
        "(b) ultralytics model.predict(folder, stream=True)": lambda f: ultralytics_stream(model, f),
        "(c) pixelsift detector.iter_detect(folder)": lambda f: pixelsift_detect(detector, f),
    }
    seconds = dict.fromkeys(methods, 0.0)
    boxes = dict.fromkeys(methods, 0)
    names = list(methods)
    for r, folder in enumerate(folders):
        for name in names[r % 3 :] + names[: r % 3]:
            begin = time.perf_counter()
            boxes[name] += methods[name](folder)
            seconds[name] += time.perf_counter() - begin
    print(f"\n{'method':<52} {'images/s':>9} {'seconds':>8} {'boxes':>6}")
    for name in names:
        print(f"{name:<52} {images / seconds[name]:9.2f} {seconds[name]:8.1f} {boxes[name]:6d}")
    best = min(seconds[names[0]], seconds[names[1]])
    ours = seconds[names[2]]
    print(f"pixelsift's detector load (not in the times above): {load_seconds:.1f} s")
    print(f"\npixelsift vs the faster ultralytics loop: {best / ours:.2f}x the speed (above 1.00 = faster)")
    print(f"with pixelsift's load included: {best / (ours + load_seconds):.2f}x")


def memory_child(folder: Path, count: int) -> None:
    from pixelsift.detect import load_detector

    photos = sorted(folder.glob("*.jpg"))[:count]
    detector = load_detector("yolov8n", imgsz=160)
    start = time.perf_counter()
    done = sum(1 for r in detector.iter_detect(photos) if r.ok)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{done} {seconds:.2f} {peak_mb:.1f}")


def memory(counts: list[int], work: Path) -> None:
    folder = work / "memory"
    generate_photos(folder, max(counts), (160, 120), seed=1)
    print("\npeak resident memory of `iter_detect` over small generated photos (yolov8n at 160 px):")
    peaks = []
    for count in counts:
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(count), "--work", str(work)],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        images, seconds, peak = done.stdout.split()
        peaks.append(float(peak))
        print(
            f"  {int(images):5d} images: peak {float(peak):7.1f} MB"
            f"  ({int(images) / float(seconds):.1f} images/s)"
        )
    print(f"  {counts[-1]} vs {counts[0]} images: peak memory x{peaks[-1] / peaks[0]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (see speed())")
    parser.add_argument("--memory-counts", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        os.environ["PIXELSIFT_HOME"] = str(args.work)
        memory_child(args.work / "memory", args.memory_child)
        return
    with tempfile.TemporaryDirectory(prefix="pixelsift-bench-detect-") as tmp:
        work = Path(tmp)
        if not args.skip_speed:
            speed(args.images, work, args.rounds)
        if not args.skip_memory:
            if args.skip_speed:
                random_weights(work)
            memory(args.memory_counts, work)


if __name__ == "__main__":
    main()
