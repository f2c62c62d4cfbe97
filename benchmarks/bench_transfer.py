"""Transfer learning on the birds set: accuracy per classifier, feature-cache speed-up, embedding speed.

    python benchmarks/bench_transfer.py [--root DIR] [--skip-finetune]

Runs in a fresh temporary PIXELSIFT_HOME (cold feature cache), all in one run:
1. embedding throughput, images/s: (a) a plain loop, model built once, batch 1, torchvision-style
   decode + preprocess, fp32; (b) `pixelsift.embed` without the cache (batched, threaded decode);
   (c) `pixelsift.embed` again with a warm cache;
2. the feature cache: `pixelsift train -c logreg` on a cold cache, then `pixelsift train -c forest` on
   the same folder, both as CLI processes (process start and imports included) and in one Python
   process (a notebook);
3. validation accuracy of every `-c` choice and of `--finetune` (head; head + last 2 blocks).
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
    parser.add_argument("--skip-finetune", action="store_true")
    args = parser.parse_args()
    root = Path(args.root)
    if not root.is_dir():
        sys.exit(f"{root}: no such folder (the birds set lives in ../shared/datasets/birds)")
    home = tempfile.mkdtemp(prefix="pixelsift-bench-home-")
    os.environ["PIXELSIFT_HOME"] = home
    os.environ["PIXELSIFT_OFFLINE"] = "1"
    import torch

    import pixelsift
    from pixelsift.datasets import read_dataset
    from pixelsift.finetune import FinetuneOptions
    from pixelsift.models.loaded import ImageModel

    paths = [s.path for s in read_dataset(root).samples]
    n = len(paths)
    print(f"{n} photos in {root}; torch threads {torch.get_num_threads()}; PIXELSIFT_HOME={home}\n")

    # 1. Embedding throughput.
    ImageModel.load()  # model load is not part of any throughput figure
    plain_loop(paths[:4])
    t0 = time.perf_counter()
    plain = plain_loop(paths)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = pixelsift.embed(root, cache=False, normalize="none")
    t_ours = time.perf_counter() - t0
    pixelsift.embed(root)  # fill the cache
    t0 = time.perf_counter()
    pixelsift.embed(root)
    t_cached = time.perf_counter() - t0
    same = np.abs(plain - ours.vectors).max() / np.abs(plain).max()
    print("1. embedding throughput (efficientnet_lite0, 1280-d)")
    print(f"   {'method':<44} {'images/s':>9} {'vs (a)':>7}")
    for name, seconds in (
        ("(a) plain loop, batch 1, model built once", t_plain),
        ("(b) pixelsift.embed, no cache", t_ours),
        ("(c) pixelsift.embed, warm feature cache", t_cached),
    ):
        print(f"   {name:<44} {n / seconds:9.1f} {t_plain / seconds:6.1f}x")
    print(f"   largest difference (b) vs (a), relative: {same:.1e}\n")

    # 2. Feature cache: a second classifier on the same photos.
    from pixelsift.featurecache import FeatureCache

    FeatureCache().clear()
    out = Path(home) / "m"
    t_first, _ = cli("train", str(root), "-c", "logreg", "-o", f"{out}-1.safetensors", "--no-report", "-q")
    t_second, _ = cli("train", str(root), "-c", "forest", "-o", f"{out}-2.safetensors", "--no-report", "-q")
    t_imports, _ = cli("--version")
    FeatureCache().clear()
    from pixelsift.models.loaded import clear_model_cache

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
    print(f"                   (of which `pixelsift --version`, i.e. starting Python: {t_imports:.2f} s)")
    print(
        f"   one process:    first {t_api_first:6.2f} s, second {t_api_second:5.2f} s: "
        f"{t_api_first / t_api_second:5.1f}x faster\n"
    )

    # 3. Accuracy of every choice.
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
    if not args.skip_finetune:
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
