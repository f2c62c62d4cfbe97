"""Detection speed and memory: the packaged SSD against OpenCV DNN, and pixelsift's YOLO path against
ultralytics' own predict loop, each in one run.

    python benchmarks/bench_detect.py --ssd [--photos DIR ...] [--rounds 5]
    python benchmarks/bench_detect.py [--images 100] [--memory-counts 100 1000]

SSD (`--ssd`): the offline SSD-MobileNet-v2 as pixelsift runs it (`--engine auto`: the engine, precision
and streams measured fastest here with detections that agree with torch fp32) against OpenCV 4 DNN
running the same frozen graph the way pixelsift 0.1 did (`cv2.dnn.readNet`, one net, decode threads),
end to end over real photos (the samples and, when present, ../shared/photos/dev-only): decoding,
resizing, inference and NMS included. Where OpenCV 4 is not installed (OpenCV 5 has no TensorFlow
importer) the baseline is torch fp32 at batch 1, and it says so. Prints the CPU flags, each way's
images/s (median of interleaved rounds), the ratio to the baseline, and how many of the baseline's
detections (score >= 0.3) each way finds again (same class, IoU >= 0.9).

Speed: the same random `yolov8n.yaml` weights (seed 0) run over the same folders of generated JPEGs
(640x480, the network's own size, and 3264x2448, an 8-megapixel phone photo) by
  (a) ultralytics, a `model.predict(path)` call per photo (the loop users write),
  (b) ultralytics, `model.predict(folder, stream=True)` (its own streaming loader),
  (c) pixelsift, `load_detector("yolov8n").iter_detect(folder)` with the weights imported into a
      temporary cache (its load time is printed, and a ratio with it included).
Each runs once on two photos first (imports, first-call allocations), then the photos are processed
in interleaved rounds so other load on the machine hits all three alike. Prints images/s, the ratio
of (c) to the faster of (a) and (b), and the number of boxes each found.

Memory: `iter_detect` over 100 and over 1,000 small generated photos, each count in a fresh process
(YOLO at 160 px, to keep it quick); prints resident memory before the first photo and its peak while
the photos stream through.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("YOLO_OFFLINE", "1")  # the reference must not phone home either
os.environ.setdefault("YOLO_VERBOSE", "False")


def generate_photos(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """Photo-like JPEGs: a smooth scene (upsampled noise) with filled shapes and sensor-like grain, so
    decoding costs what it costs on camera photos. Ten distinct photos, repeated under new names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    paths: list[Path] = []
    for i in range(count):
        path = folder / f"photo_{i:05d}.jpg"
        if i >= 10:
            shutil.copyfile(paths[i % 10], path)
            paths.append(path)
            continue
        small = rng.integers(40, 220, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
        img = Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            w, h = int(rng.integers(8, max(9, width // 2))), int(rng.integers(8, max(9, height // 2)))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            (draw.ellipse if i % 2 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
        grain = rng.normal(0, 10, (height, width, 3)).astype(np.float32)
        arr = np.clip(np.asarray(img, np.float32) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(path, quality=90)
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
    # ultralytics sets torch's threads itself when it sets up (cpu_count - 1: 1 on a 2-core machine)
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


def speed(images: int, size: tuple[int, int], work: Path, rounds: int) -> None:
    """The photos are split into `rounds` folders; each round runs the three methods on its folder in a
    rotating order, so load from other processes on the machine falls on all three alike."""
    import torch

    from pixelsift.detect import load_detector
    from pixelsift.runtime.device import resolve_device

    label = f"{size[0]}x{size[1]}"
    per_round = -(-images // rounds)
    folders = []
    for r in range(rounds):
        count = min(per_round, images - r * per_round)
        folder = work / f"speed-{label}" / f"round_{r:02d}"
        generate_photos(folder, count, size, seed=100 + r)
        folders.append(folder)
    model, _ = random_weights(work)
    start = time.perf_counter()
    detector = load_detector("yolov8n", conf=0.25, iou=0.45)
    load_seconds = time.perf_counter() - start
    print(
        f"\n{images} generated {label} JPEGs in {rounds} interleaved rounds; yolov8n, random weights "
        f"(seed 0); device {resolve_device(None)}; torch threads {torch.get_num_threads()}"
    )
    warm = work / f"warm-{label}"
    generate_photos(warm, 2, size, seed=2)
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
    round_ratios = []
    for r, folder in enumerate(folders):
        spent = {}
        for name in names[r % 3 :] + names[: r % 3]:
            begin = time.perf_counter()
            boxes[name] += methods[name](folder)
            spent[name] = time.perf_counter() - begin
            seconds[name] += spent[name]
        round_ratios.append(min(spent[names[0]], spent[names[1]]) / spent[names[2]])
    print(f"{'method':<52} {'images/s':>9} {'seconds':>8} {'boxes':>6}")
    for name in names:
        print(f"{name:<52} {images / seconds[name]:9.2f} {seconds[name]:8.1f} {boxes[name]:6d}")
    best = min(seconds[names[0]], seconds[names[1]])
    ours = seconds[names[2]]
    print(
        f"pixelsift vs the faster ultralytics loop: {best / ours:.2f}x the speed (above 1.00 = faster); "
        f"{best / (ours + load_seconds):.2f}x with pixelsift's detector load ({load_seconds:.1f} s) included"
    )
    low, mid, high = np.percentile(round_ratios, [0, 50, 100])
    print(f"per round (same photos, back to back): median {mid:.2f}x, from {low:.2f}x to {high:.2f}x")


def resident_mb() -> float:
    """This process's resident memory now (Linux /proc; the peak so far elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(folder: Path, count: int) -> None:
    from pixelsift.detect import load_detector

    photos = sorted(folder.glob("*.jpg"))[:count]
    detector = load_detector("yolov8n", imgsz=160)
    detector.warmup()
    start_mb = peak_mb = resident_mb()
    start = time.perf_counter()
    done = 0
    for result in detector.iter_detect(photos):
        done += result.ok
        peak_mb = max(peak_mb, resident_mb())
    seconds = time.perf_counter() - start
    print(f"{done} {seconds:.2f} {start_mb:.1f} {peak_mb:.1f}")


def memory(counts: list[int], work: Path) -> None:
    folder = work / "memory"
    generate_photos(folder, max(counts), (160, 120), seed=1)
    print(
        "\nresident memory of `iter_detect` over small generated photos (yolov8n at 160 px, a process each):"
    )
    peaks = []
    for count in counts:
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(count), "--work", str(work)],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        images, seconds, start_mb, peak_mb = done.stdout.split()
        peaks.append(float(peak_mb))
        print(
            f"  {int(images):5d} images: {float(start_mb):7.1f} MB before the first photo, "
            f"peak {float(peak_mb):7.1f} MB  ({int(images) / float(seconds):.1f} images/s)"
        )
    print(f"  peak with {counts[-1]} images / peak with {counts[0]}: {peaks[-1] / peaks[0]:.3f}")


def ssd_photos(folders: list[Path]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        found += sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return found


def ssd_speed(photos: list[Path], rounds: int, min_images: int = 108) -> None:
    """`min_images` per round: the photos repeated (a folder's run, not its first batches' start-up)."""
    import torch

    from pixelsift.core.optional import is_installed, major_version
    from pixelsift.detect import load_detector
    from pixelsift.models import get_model_spec
    from pixelsift.models.weights import packaged_path
    from pixelsift.runtime.device import detect_cpu_features
    from pixelsift.runtime.options import RunOptions
    from pixelsift.runtime.tuning import matched_detections

    model = "ssd_mobilenet_v2_coco"
    photos = (photos * -(-min_images // len(photos)))[: max(min_images, len(photos))]
    print(
        f"CPU features: {detect_cpu_features().describe()}; {os.cpu_count()} CPUs; torch {torch.__version__}"
    )
    print(f"{len(set(photos))} photos, {len(photos)} per round, {rounds} interleaved rounds (median round)\n")
    ways: dict[str, object] = {}
    opencv4 = False
    if is_installed("cv2"):
        import cv2

        opencv4 = (major_version(cv2.__version__) or 0) < 5
    if opencv4:
        from pixelsift.detect.backends.opencv_dnn import load_model_file

        graph = packaged_path(get_model_spec(model))
        assert graph is not None
        ways[f"OpenCV {cv2.__version__} DNN (baseline)"] = load_model_file(graph, RunOptions(), conf=0.25)
        ways["torch fp32, batch 1"] = load_detector(model, engine="torch", precision="fp32", batch_size=1)
    else:
        print("OpenCV 4 is not installed here (OpenCV 5 cannot read TensorFlow graphs): the baseline is")
        print("torch fp32 at batch 1")
        ways["torch fp32, batch 1 (baseline)"] = load_detector(
            model, engine="torch", precision="fp32", batch_size=1
        )
    start = time.perf_counter()
    auto = load_detector(model)  # measures the engines once on a new machine (said on stderr)
    print(f"auto loaded in {time.perf_counter() - start:.1f} s: {auto.describe()}")
    ways[f"pixelsift auto ({auto.runs_on.split(',')[0]}, batch {auto.batch_size})"] = auto
    found: dict[str, list] = {}  # type: ignore[type-arg]
    for name, detector in ways.items():
        found[name] = list(detector.iter_detect(photos[:2]))  # imports, first-call allocations
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, detector in ways.items():
            start = time.perf_counter()
            found[name] = list(detector.iter_detect(photos))  # type: ignore[attr-defined]
            times[name].append(time.perf_counter() - start)
    baseline_name = next(iter(ways))
    baseline = len(photos) / float(np.median(times[baseline_name]))

    def boxes(results: list) -> list:  # type: ignore[type-arg]
        return [
            (r.detections.boxes, r.detections.scores, np.asarray(r.detections.class_ids)) for r in results
        ]

    print(f"\n{'way':<48} {'images/s':>9} {'ratio':>6} {'detections alike':>17}")
    reference = boxes(found[baseline_name])
    for name in ways:
        rate = len(photos) / float(np.median(times[name]))
        agreed, total = matched_detections(reference, boxes(found[name]))
        print(f"{name:<48} {rate:9.1f} {rate / baseline:5.2f}x {agreed / max(total, 1):16.1%}")
    print(
        "\nratio: images/s over the baseline's, measured in this run. detections alike: of the baseline's and"
    )
    print("this way's detections >= 0.3, the share with a same-class box at IoU >= 0.9 on the other side.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ssd", action="store_true", help="the packaged SSD against OpenCV DNN (see above)")
    parser.add_argument(
        "--photos",
        type=Path,
        nargs="+",
        default=[REPO / "samples", REPO.parent / "shared" / "photos" / "dev-only"],
        help="--ssd: folders of real photos (default: samples/ and ../shared/photos/dev-only)",
    )
    parser.add_argument(
        "--images", type=int, default=100, help="photos per size (--ssd: at least this many per round)"
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["640x480", "3264x2448"],
        help="photo sizes, WxH (default: network-sized, and an 8-megapixel phone photo)",
    )
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (see speed())")
    parser.add_argument("--memory-counts", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ssd:
        ssd_speed(ssd_photos([p for p in args.photos if p.is_dir()]), args.rounds, args.images)
        return
    if args.memory_child is not None:
        os.environ["PIXELSIFT_HOME"] = str(args.work)
        memory_child(args.work / "memory", args.memory_child)
        return
    with tempfile.TemporaryDirectory(prefix="pixelsift-bench-detect-") as tmp:
        work = Path(tmp)
        if not args.skip_speed:
            for text in args.sizes:
                width, height = (int(v) for v in text.lower().split("x"))
                speed(args.images, (width, height), work, args.rounds)
        if not args.skip_memory:
            if args.skip_speed:
                random_weights(work)
            memory(args.memory_counts, work)


if __name__ == "__main__":
    main()
