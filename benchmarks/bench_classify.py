"""Classification throughput: the naive recipe vs a plain loop vs `pixelsift classify`, in one run.

    python benchmarks/bench_classify.py [--folder DIR] [--images 64]

(a) naive: build the model and load its weights for every image (what the seed's `classify_image` did);
(b) plain loop: model built once, one image at a time, torchvision-style decode + preprocess, fp32;
(c) pixelsift: `pixelsift classify` on the whole folder (the default `--engine auto`: the engine,
    precision and streams measured fastest here, once, before the timing), model load included.
Prints images/s, ratios against (a) and (b), and whether the top-1 labels are identical.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelsift.cli import main as cli_main
from pixelsift.imaging.images import walk_images
from pixelsift.models.registry import get_model_spec
from pixelsift.models.weights import load_network
from pixelsift.runtime.device import detect_cpu_features, use_threads

REPO = Path(__file__).resolve().parents[1]
BIRDS = REPO.parent / "shared" / "datasets" / "birds"


def photo_folder(requested: str | None, count: int) -> tuple[Path, list[Path]]:
    """The photos to classify: --folder, else the birds set, else generated JPEGs."""
    if requested:
        root = Path(requested)
    elif BIRDS.is_dir():
        root = BIRDS
    else:
        root = Path(tempfile.mkdtemp(prefix="pixelsift-bench-"))
        rng = np.random.default_rng(0)
        for i in range(count):
            arr = rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / f"gen_{i:04d}.jpg", quality=90)
    photos = list(walk_images(root))[:count]
    if len(photos) < count:
        sys.exit(f"need {count} photos, found {len(photos)} in {root}")
    return root, photos


def plain_preprocess(spec, path: Path) -> torch.Tensor:
    img = Image.open(path).convert("RGB")
    return torch.from_numpy(spec.preprocessing(img))[None]


def naive(spec, photos: list[Path]) -> list[str]:
    use_threads()
    labels = []
    for path in photos:
        net = load_network(spec)  # rebuilt and reloaded for every image
        with torch.inference_mode():
            labels.append(spec.categories[int(net(plain_preprocess(spec, path)).argmax())])
    return labels


def plain_loop(spec, photos: list[Path]) -> list[str]:
    use_threads()  # every core, as torch's default (pixelsift's streams leave torch at 1 thread)
    net = load_network(spec)
    labels = []
    with torch.inference_mode():
        for path in photos:
            labels.append(spec.categories[int(net(plain_preprocess(spec, path)).argmax())])
    return labels


def pixelsift_cli(photos: list[Path], model: str) -> list[str]:
    import csv

    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "paths.txt"
        listing.write_text("\n".join(map(str, photos)) + "\n")
        out = io.StringIO()
        with open(listing) as stdin, redirect_stdout(out):
            sys.stdin = stdin
            try:
                code = cli_main(["classify", "-", "-m", model, "-k", "1", "--format", "csv", "-q"])
            finally:
                sys.stdin = sys.__stdin__
    if code != 0:
        sys.exit(f"pixelsift classify exited with {code}")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    return [r["label"] for r in rows]


def timed(fn, *args) -> tuple[float, list[str]]:
    start = time.perf_counter()
    labels = fn(*args)
    return time.perf_counter() - start, labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--model", default="efficientnet_lite0")
    args = parser.parse_args()
    root, photos = photo_folder(args.folder, args.images)
    spec = get_model_spec(args.model)
    print(f"{len(photos)} photos from {root}; model {spec.name}; torch threads {torch.get_num_threads()}")
    print(f"CPU features: {detect_cpu_features().describe()}")
    pixelsift_cli(photos[:2], args.model)  # warm-up: imports, first-call allocations
    t_c, labels_c = timed(pixelsift_cli, photos, args.model)
    t_b, labels_b = timed(plain_loop, spec, photos)
    t_a, labels_a = timed(naive, spec, photos)
    n = len(photos)
    rows = [
        ("(a) naive: model built per image", t_a, labels_a),
        ("(b) plain loop, batch 1, model built once", t_b, labels_b),
        ("(c) pixelsift classify", t_c, labels_c),
    ]
    print(f"\n{'method':<45} {'images/s':>9} {'vs (a)':>7} {'vs (b)':>7}")
    for name, seconds, _ in rows:
        print(f"{name:<45} {n / seconds:9.1f} {t_a / seconds:6.1f}x {t_b / seconds:6.2f}x")
    same = labels_a == labels_b == labels_c
    agree_c = sum(x == y for x, y in zip(labels_b, labels_c, strict=True)) / n
    print(f"\ntop-1 identical across (a), (b), (c): {same} ((c) agrees with (b) on {agree_c:.1%})")


if __name__ == "__main__":
    main()
