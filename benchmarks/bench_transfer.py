"""Transfer learning on the birds set: accuracy per classifier, feature-cache speed-up, embedding speed.

    python benchmarks/bench_transfer.py [--root DIR] [--images 64] [--sections 123] [--skip-finetune]

Runs in a fresh temporary PIXELSIFT_HOME (cold feature cache), all in one run:
1. embedding throughput on the first `--images` photos, images/s: (a) a plain loop, model built once,
   batch 1, torchvision-style decode + preprocess, fp32; (b) `pixelsift.embed` without the cache
   (batched, threaded decode); (c) `pixelsift.embed` again with a warm cache. (a) and (b) alternate
   for three rounds and the best round of each counts, so load from other processes skews less;
2. the feature cache: `pixelsift train -c logreg` on a cold cache, then `pixelsift train -c forest` on
   the same folder, both as CLI processes (process start and imports included) and in one Python
   process (a notebook);
3. validation accuracy of every `-c` choice and of `--finetune` (head; head + last 2 blocks);
4. backbones, on the birds set and on a generated hard set (`make_hard_dataset`): for every backbone
   available offline (EfficientNet-Lite0/1/2 with `pixelsift[lite]`), logistic regression's validation
   accuracy, its 5x5-fold CV accuracy on the training split (mean ± std), and the embedding rate
   relative to Lite0 (cold cache, same run); the same for every ensemble of them (`-m a+b`), what
   `-m auto` chooses, and validation accuracy with `--tta flip`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIRDS = REPO.parent / "shared" / "datasets" / "birds"


def cli(*args: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pixelsift", *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pixelsift {' '.join(args)} failed:\n{done.stderr}")
    return seconds, done.stdout


def plain_loop(paths: list[Path]) -> np.ndarray:
    """What a user writes by hand: one image at a time through the backbone, no batching, no cache."""
    import torch
    from PIL import Image

    from pixelsift.models.network import split_at_last_linear
    from pixelsift.models.registry import get_model_spec
    from pixelsift.models.weights import load_network

    spec = get_model_spec("efficientnet_lite0")
    assert spec.preprocessing is not None
    body = split_at_last_linear(load_network(spec)).body.eval()
    rows = []
    with torch.inference_mode():
        for path in paths:
            x = torch.from_numpy(spec.preprocessing(Image.open(path).convert("RGB")))[None]
            rows.append(torch.flatten(body(x), 1)[0].numpy())
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default=str(BIRDS))
    parser.add_argument("--images", type=int, default=64, help="photos for the throughput figures")
    parser.add_argument("--sections", default="1234", help="which sections to run, e.g. 14")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--hard-train", type=int, default=40, help="hard set: training photos per class")
    parser.add_argument("--hard-valid", type=int, default=40, help="hard set: validation photos per class")
    args = parser.parse_args()
    root = Path(args.root)
    if not root.is_dir():
        sys.exit(f"{root}: no such folder (the birds set lives in ../shared/datasets/birds)")
    home = tempfile.mkdtemp(prefix="pixelsift-bench-home-")
    os.environ["PIXELSIFT_HOME"] = home
    os.environ["PIXELSIFT_OFFLINE"] = "1"
    import torch

    from pixelsift.imaging.datasets import read_dataset

    paths = [s.path for s in read_dataset(root).samples]
    print(f"{len(paths)} photos in {root}; torch threads {torch.get_num_threads()}; PIXELSIFT_HOME={home}\n")

    if "1" in args.sections:
        throughput(paths[: args.images])
    if "2" in args.sections:
        cache_speedup(root, home)
    if "3" in args.sections:
        accuracy(root, args.skip_finetune)
    if "4" in args.sections:
        from pixelsift.imaging.generated import make_hard_dataset

        print(cpu_line() + "\n")
        hard = make_hard_dataset(
            Path(home) / "hard", train_per_class=args.hard_train, valid_per_class=args.hard_valid
        )
        for name, folder in (
            ("birds", root),
            (f"hard ({args.hard_train}+{args.hard_valid} per class)", hard),
        ):
            backbones(name, folder)


def cpu_line() -> str:
    from pixelsift.runtime.device import detect_cpu_features

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"CPU: {model}, {os.cpu_count()} cores, flags: {detect_cpu_features().describe()}"


def backbones(name: str, root: Path) -> None:
    """Section 4 on one data set: each backbone, each ensemble, -m auto, --tta flip."""
    import itertools

    import pixelsift
    from pixelsift.imaging.datasets import read_dataset
    from pixelsift.runtime.options import RunOptions
    from pixelsift.transfer.classifiers import CLASSIFIERS
    from pixelsift.transfer.data import labelled_splits
    from pixelsift.transfer.selection import choose_backbone, cross_validate, offline_backbones

    logreg = CLASSIFIERS["logreg"]
    found, rates = {}, {}
    for backbone in offline_backbones():
        # loaded, measured by --engine auto and warm before the clock starts (a cold feature cache:
        # what is timed is embedding)
        pixelsift.embed(read_dataset(root).samples[0].path, model=backbone, cache=False)
        t0 = time.perf_counter()
        found[backbone] = labelled_splits(root, backbone, 0.2, 0, True, False, RunOptions())
        rates[backbone] = (len(found[backbone].train) + len(found[backbone].valid)) / (
            time.perf_counter() - t0
        )
    names = list(found)
    first = found[names[0]]
    print(
        f"4. backbones on {name}: {len(first.train)} training, {len(first.valid)} validation photos, logreg"
    )
    print(f"   {'backbone':<58} {'valid':>6} {'5x5-fold CV':>14} {'embed rate':>11} {'tta flip':>9}")
    for k in range(1, len(names) + 1):
        for combo in itertools.combinations(names, k):
            model = "+".join(combo)
            result = pixelsift.train(root, model=model)  # features from the cache
            splits = labelled_splits(root, model, 0.2, 0, True, False, RunOptions())
            cv = cross_validate(splits.train, splits.classes, logreg, logreg.defaults, repeats=5)
            rate = 1 / sum(1 / rates[n] for n in combo) / rates[names[0]]
            flip = result.model.evaluate(root, tta="flip").accuracy
            print(
                f"   {model:<58} {result.valid_score:6.3f} {cv.mean():7.3f} ± {cv.std():.3f} "
                f"{rate:10.2f}x {flip:9.3f}"
            )
    choice = choose_backbone(
        lambda name: (
            found[name] if name in found else labelled_splits(root, name, 0.2, 0, True, False, RunOptions())
        ),
        names,
        logreg,
        logreg.defaults,
    )
    print(f"   -m auto (3x5-fold CV, singles and ensembles) chose {choice.chosen}: {choice.reason}\n")


def throughput(photos: list[Path]) -> None:
    import pixelsift
    from pixelsift.runtime.loaded import ImageModel

    ImageModel.load()  # model load is not part of any throughput figure
    plain_loop(photos[:4])
    t_plain = t_ours = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        plain = plain_loop(photos)
        t_plain = min(t_plain, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = pixelsift.embed(photos, cache=False, normalize="none")
        t_ours = min(t_ours, time.perf_counter() - t0)
    pixelsift.embed(photos)  # fill the cache
    t0 = time.perf_counter()
    pixelsift.embed(photos)
    t_cached = time.perf_counter() - t0
    same = np.abs(plain - ours.vectors).max() / np.abs(plain).max()
    n = len(photos)
    print(f"1. embedding throughput, {n} photos (efficientnet_lite0, 1280-d; best of 3 rounds)")
    print(f"   {'method':<44} {'images/s':>9} {'vs (a)':>7}")
    for name, seconds in (
        ("(a) plain loop, batch 1, model built once", t_plain),
        ("(b) pixelsift.embed, no cache", t_ours),
        ("(c) pixelsift.embed, warm feature cache", t_cached),
    ):
        print(f"   {name:<44} {n / seconds:9.1f} {t_plain / seconds:6.1f}x")
    print(f"   largest difference (b) vs (a), relative: {same:.1e}\n")


def cache_speedup(root: Path, home: str) -> None:
    import pixelsift
    from pixelsift.features.cache import FeatureCache

    FeatureCache().clear()
    out = Path(home) / "m"
    t_first, _ = cli("train", str(root), "-c", "logreg", "-o", f"{out}-1.safetensors", "--no-report", "-q")
    t_second, _ = cli("train", str(root), "-c", "forest", "-o", f"{out}-2.safetensors", "--no-report", "-q")
    # What every `train` process pays before any work: Python, torch, scikit-learn, pixelsift, the registry.
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch, sklearn.linear_model, sklearn.ensemble, pixelsift.transfer; "
            "from pixelsift.models.registry import get_model_spec; get_model_spec('efficientnet_lite0')",
        ],
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    t_imports = time.perf_counter() - start
    FeatureCache().clear()
    from pixelsift.runtime.loaded import clear_model_cache

    clear_model_cache()
    t0 = time.perf_counter()
    pixelsift.train(root, classifier="logreg")
    t_api_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = pixelsift.train(root, classifier="forest")
    t_api_second = time.perf_counter() - t0
    assert second.images_run == 0
    print("2. feature cache: `train -c logreg` on a cold cache, then `train -c forest`")
    print(
        f"   CLI processes:  first {t_first:6.2f} s, second {t_second:5.2f} s: "
        f"{t_first / t_second:5.1f}x faster"
    )
    print(
        f"                   (of which starting Python and importing torch, scikit-learn and pixelsift: "
        f"{t_imports:.2f} s; the second run without it: {t_first - t_imports:.2f} s vs "
        f"{t_second - t_imports:.2f} s, {(t_first - t_imports) / (t_second - t_imports):.1f}x)"
    )
    print(
        f"   one process:    first {t_api_first:6.2f} s, second {t_api_second:5.2f} s: "
        f"{t_api_first / t_api_second:5.1f}x faster\n"
    )


def accuracy(root: Path, skip_finetune: bool) -> None:
    import pixelsift
    from pixelsift.transfer.finetune import FinetuneOptions

    print("3. validation accuracy on the birds set")
    print(f"   {'classifier':<34} {'train':>6} {'valid':>6} {'fit s':>6}")
    for name in ("logreg", "svm", "knn", "forest", "mlp"):
        t0 = time.perf_counter()
        r = pixelsift.train(root, classifier=name)
        print(
            f"   {'-c ' + name:<34} {r.train_score:6.3f} {r.valid_score:6.3f} {time.perf_counter() - t0:6.1f}"
        )
    t0 = time.perf_counter()
    r = pixelsift.train(root, search=True)
    label = f"--search (chose {r.model.classifier})"
    print(f"   {label:<34} {r.train_score:6.3f} {r.valid_score:6.3f} {time.perf_counter() - t0:6.1f}")
    if not skip_finetune:
        for label, options in (
            ("--finetune", FinetuneOptions()),
            ("--finetune --layers 2", FinetuneOptions(layers=2)),
        ):
            t0 = time.perf_counter()
            r = pixelsift.finetune(root, options=options)
            seconds = time.perf_counter() - t0
            print(f"   {label:<34} {r.train_score:6.3f} {r.valid_score:6.3f} {seconds:6.1f}")


if __name__ == "__main__":
    main()
