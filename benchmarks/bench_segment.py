"""Instance segmentation speed: pixelsift's paths against each model's own reference loop, in one run.

    python benchmarks/bench_segment.py [--images 12] [--rounds 3] [--size 640x480] [--models yolo rcnn]

The same random weights (seed 0; no segmentation weights install offline) run over the same generated
JPEGs by
  YOLO-seg (yolov8n-seg; the class head biased towards "car" with fixed noise on its logits, so
  scores differ, and both sides keep the best 20 objects per photo: the same objects, and masks
  made for a realistic number of them):
    (a) ultralytics, `model.predict(path)` per photo (the loop users write)
    (b) ultralytics, `model.predict(folder, stream=True)`
    (c) pixelsift in torch, `load_segmenter("yolov8n-seg", engine="torch").iter_detect(folder)`
    (d) pixelsift, `--engine auto` (asked for; YOLO's default is (c)): the engine measured fastest
        here, on square uint8 inputs; the score noise is a hook on torch's network, so (d) runs
        without it and keeps 20 of the tied boxes per photo (its objects differ; its speed is what
        (d) is for)
  Mask R-CNN (maskrcnn_resnet50_fpn, score threshold 0.05 on both sides):
    (a) torchvision's reference loop: decode with Pillow, the weights' transforms, `model([image])`
        per photo (masks pasted at the photo's size, as torchvision returns them)
    (c) pixelsift, `load_segmenter("maskrcnn_resnet50_fpn").iter_detect(folder)`
Everything runs once on two photos first; then the methods take turns over `--rounds` folders, so
other load on the machine falls on all of them alike. Prints the CPU flags, images/s, the objects
found with a non-empty mask (ultralytics drops the others from its results; pixelsift keeps their
boxes) and pixelsift's speed over the faster reference (above 1.00 = faster).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import generate_photos  # photo-like JPEGs, shared with the detection benchmark

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")
MAX_OBJECTS = 20


def import_weights(name: str, network, home: Path) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import save_file

    from pixelsift.cli import main as cli_main

    path = home / f"{name}-random.safetensors"
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    os.environ["PIXELSIFT_HOME"] = str(home)
    if cli_main(["models", "add", name, str(path), "--quiet"]) != 0:
        sys.exit(f"could not import the {name} weights into the pixelsift cache")


def yolo_methods(home: Path) -> dict[str, Callable[[Path], int]]:
    import torch
    from ultralytics import YOLO

    from pixelsift.detect import load_segmenter

    torch.manual_seed(0)
    model = YOLO("yolov8n-seg.yaml")
    with torch.no_grad():
        for branch in model.model.model[-1].cv3:
            branch[-1].bias.fill_(-12.0)
            branch[-1].bias[2] = -1.0
    import_weights("yolov8n-seg", model.model, home)
    segmenter = load_segmenter("yolov8n-seg", conf=0.25, iou=0.45, engine="torch")
    segmenter.max_det = MAX_OBJECTS
    auto = load_segmenter("yolov8n-seg", conf=0.25, iou=0.45, engine="auto")
    auto.max_det = MAX_OBJECTS
    print(f"--engine auto chose: {auto.describe()}")
    # Random weights give every anchor the same car score, and ties make the two NMS implementations
    # keep different boxes; the same fixed noise on both networks' class logits gives scores that
    # differ, so both keep the same objects and make the same masks.
    for network in (model.model, segmenter.runner.network.net):
        for branch in network.model[-1].cv3:
            branch[-1].register_forward_hook(score_noise)
    settings = {"verbose": False, "conf": 0.25, "iou": 0.45, "max_det": MAX_OBJECTS}

    def loop(folder: Path) -> int:
        return sum(len(model.predict(str(p), **settings)[0].boxes) for p in sorted(folder.glob("*.jpg")))

    def stream(folder: Path) -> int:
        return sum(len(r.boxes) for r in model.predict(str(folder), stream=True, **settings))

    return {
        "YOLO-seg (a) ultralytics model.predict(path) loop": loop,
        "YOLO-seg (b) ultralytics model.predict(folder, stream=True)": stream,
        "YOLO-seg (c) pixelsift iter_detect(folder), torch": lambda f: pixelsift_count(segmenter, f),
        "YOLO-seg (d) pixelsift, --engine auto": lambda f: pixelsift_count(auto, f),
    }


def score_noise(module, inputs, output):  # type: ignore[no-untyped-def]
    """The car logit plus noise that depends only on the feature map's shape (the same on both sides)."""
    import torch

    generator = torch.Generator().manual_seed(output.shape[-1] * 1000 + output.shape[-2])
    noise = torch.randn(output.shape[-2:], generator=generator) * 2.0
    output[:, 2] += noise
    return output


def rcnn_methods(home: Path) -> dict[str, Callable[[Path], int]]:
    import torch
    import torchvision
    from PIL import Image

    from pixelsift.detect import load_segmenter

    torch.manual_seed(0)
    reference = torchvision.models.get_model("maskrcnn_resnet50_fpn", weights=None, weights_backbone=None)
    reference.eval()
    import_weights("maskrcnn_resnet50_fpn", reference, home)
    segmenter = load_segmenter("maskrcnn_resnet50_fpn", conf=0.05, iou=0.5)
    transform = torchvision.models.get_model_weights("maskrcnn_resnet50_fpn").DEFAULT.transforms()

    def loop(folder: Path) -> int:
        found = 0
        with torch.inference_mode():
            for path in sorted(folder.glob("*.jpg")):
                image = transform(Image.open(path).convert("RGB"))
                (out,) = reference([image])
                found += int((out["masks"] > 0.5).flatten(1).any(1).sum())
        return found

    return {
        "Mask R-CNN (a) torchvision model([image]) loop": loop,
        "Mask R-CNN (c) pixelsift segmenter.iter_detect(folder)": lambda f: pixelsift_count(segmenter, f),
    }


def pixelsift_count(segmenter, folder: Path) -> int:  # type: ignore[no-untyped-def]
    found = 0
    for result in segmenter.iter_detect(folder):
        if not result.ok or result.detections is None:
            sys.exit(f"{result.path}: {result.error}")
        found += int((result.detections.areas() > 0).sum())
    return found


def race(title: str, methods: dict[str, Callable[[Path], int]], folders: list[Path], warm: Path) -> None:
    for method in methods.values():
        method(warm)
    names = list(methods)
    seconds = dict.fromkeys(names, 0.0)
    objects = dict.fromkeys(names, 0)
    for turn, folder in enumerate(folders):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            start = time.perf_counter()
            objects[name] += methods[name](folder)
            seconds[name] += time.perf_counter() - start
    images = sum(len(list(f.glob("*.jpg"))) for f in folders)
    print(f"\n{title}: {images} photos in {len(folders)} interleaved rounds")
    print(f"{'method':<62} {'images/s':>9} {'objects':>8}")
    for name in names:
        print(f"{name:<62} {images / seconds[name]:9.2f} {objects[name]:8d}")
    ours = [n for n in names if "pixelsift" in n]
    reference = min(seconds[n] for n in names if n not in ours)
    for name in ours:
        print(f"{name.split(' ', 1)[1]} / the faster reference: {reference / seconds[name]:.2f}x the speed")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=12, help="photos in all (default: 12)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="640x480", help="photo size, WxH (default: 640x480)")
    parser.add_argument("--models", nargs="+", choices=("yolo", "rcnn"), default=["yolo", "rcnn"])
    args = parser.parse_args()
    import torch

    from pixelsift.runtime.device import detect_cpu_features

    cpu = detect_cpu_features().describe()
    print(f"CPU: {cpu}; {os.cpu_count()} cores; torch threads {torch.get_num_threads()}")
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="pixelsift-bench-segment-") as tmp:
        work = Path(tmp)
        per_round = -(-args.images // args.rounds)
        folders = [
            generate_photos(work / f"round_{r:02d}", per_round, (width, height), seed=100 + r)[0].parent
            for r in range(args.rounds)
        ]
        warm = generate_photos(work / "warm", 2, (width, height), seed=2)[0].parent
        if "yolo" in args.models:
            race(f"YOLO-seg, {args.size}", yolo_methods(work), folders, warm)
        if "rcnn" in args.models:
            race(f"Mask R-CNN, {args.size}", rcnn_methods(work), folders, warm)


if __name__ == "__main__":
    main()
