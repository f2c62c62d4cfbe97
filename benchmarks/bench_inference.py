"""Inference speed and agreement across engines and precisions, measured in one run on this machine.

    python benchmarks/bench_inference.py [--seconds 3] [--models efficientnet_lite0,resnet50,...]

1. Matmul peak (fp32, bf16) of this CPU, so model throughput can be read as a fraction of it.
2. Model only: images/s per model x setting, ratio to fp32 eager (plain module, batch 32, contiguous)
   measured in the same run, and achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode).
   efficientnet_lite0 has real weights; the others are timed with random weights (speed does not
   depend on the values).
3. End to end from JPEG files (the birds set when ../shared is present, else generated photos):
   `Classifier.iter_classify` per setting against the foundation benchmark's plain fp32 loop, and
   the end-to-end limit: decode + preprocess core-seconds per image and model core-seconds per image
   (each measured alone, on one core), the limit `cores / (decode + model)`, and the rate `--engine
   auto` (the default) reaches as a percentage of it.
4. Agreement: top-1 of every faster setting against fp32, on real photos with real weights.
5. Large photos: 4000x3000 JPEGs decoded + preprocessed with and without JPEG draft mode.
6. Transfer learning on the birds set (when ../shared is present): logistic-regression validation
   accuracy on features computed in fp32, bf16 and with the ONNX Runtime engine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelsift.imaging.images import open_image, walk_images
from pixelsift.models.network import split_at_last_linear
from pixelsift.models.registry import get_model_spec
from pixelsift.models.weights import load_network
from pixelsift.runtime.classify import Classifier
from pixelsift.runtime.device import detect_cpu_features, use_threads
from pixelsift.runtime.loaded import ImageModel
from pixelsift.runtime.options import RunOptions
from pixelsift.runtime.torch_runner import ModelRunner
from pixelsift.runtime.tuning import measure_rate

REPO = Path(__file__).resolve().parents[1]
BIRDS = REPO.parent / "shared" / "datasets" / "birds"
SETTINGS = [  # (label, engine, precision)
    ("torch fp32 (runner)", "torch", "fp32"),
    ("torch bf16 autocast", "torch", "bf16"),
    ("torch fp16 autocast", "torch", "fp16"),
    ("torch auto", "torch", "auto"),
    ("onnxruntime fp32", "onnxruntime", "fp32"),
    ("onnxruntime int8", "onnxruntime", "int8"),
    ("openvino fp32", "openvino", "fp32"),
    ("openvino bf16", "openvino", "bf16"),
    ("auto (the default)", "auto", "auto"),
]
END_TO_END = {"torch fp16 autocast"}  # emulated on CPUs: minutes for the photos, nothing to learn


def installed(engine: str) -> bool:
    from pixelsift.core.optional import is_installed

    return engine in ("torch", "auto") or is_installed(engine)


def rate(fn, batch: int, seconds: float) -> float:
    fn()  # warm-up
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        fn()
        done += batch
    return done / (time.perf_counter() - start)


def matmul_peak(seconds: float) -> dict[str, float]:
    """Best square-matmul GFLOP/s per dtype (fp32 at two sizes; bf16 at 1024 only, since emulated bf16
    runs at a few GFLOP/s and a larger one would take minutes)."""
    out: dict[str, float] = {}
    for name, dtype, sizes in (("fp32", torch.float32, (1024, 2048)), ("bf16", torch.bfloat16, (1024,))):
        for n in sizes:
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            per_second = rate(lambda a=a, b=b: torch.mm(a, b), 1, seconds)
            out[name] = max(out.get(name, 0.0), per_second * 2 * n**3 / 1e9)
    return out


def flops_per_image(net: torch.nn.Module, size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(torch.randn(1, 3, size, size))
    return float(counter.get_total_flops())


def network_for(name: str) -> torch.nn.Module:
    spec = get_model_spec(name)
    if name == "efficientnet_lite0":
        return split_at_last_linear(load_network(spec)).eval()
    torch.manual_seed(0)
    return split_at_last_linear(spec.build()).eval()  # type: ignore[misc]


def ensure_random_weights(name: str) -> None:
    """Timing only: give models without offline weights random ones in a throwaway cache."""
    from pixelsift.models import weights

    spec = get_model_spec(name)
    if weights.weights_status(spec) == "missing":
        path = Path(tempfile.mkdtemp()) / "random.pth"
        torch.manual_seed(0)
        torch.save(spec.build().state_dict(), path)  # type: ignore[misc]
        weights.add(spec, path)


def model_only(models: list[str], seconds: float, peak: dict[str, float]) -> None:
    print("\n## Model only (images/s; ratio to fp32 eager batch 32 in this run; GFLOP/s achieved)")
    print(
        f"{'model':<20} {'setting':<40} {'batch':>5} {'img/s':>7} {'ratio':>6} {'GFLOP/s':>8} {'% peak':>7}"
    )
    for name in models:
        spec = get_model_spec(name)
        size = spec.input_size or 224
        net = network_for(name)
        flops = flops_per_image(net, size)
        x32 = torch.randn(32, 3, size, size)
        use_threads()  # the eager baseline gets every core (runners of 1-thread streams leave torch at 1)
        with torch.inference_mode():
            base = rate(lambda net=net, x=x32: net(x), 32, seconds)
        rows = [("fp32 eager (plain)", 32, base, "fp32")]
        for label, engine, precision in SETTINGS:
            if not installed(engine):
                continue
            model = ImageModel.load(
                name, engine=engine, precision=precision, device="cpu", cached=False, purpose="classify"
            )
            batch = model.runner.batch_size
            x = np.random.default_rng(0).integers(0, 255, (batch, 3, size, size), dtype=np.uint8)
            chosen = model.runner.precision
            streams = model.runner.streams  # every stream computing at once, as iter_outputs runs them
            shown = f"{label} -> {model.engine} {chosen}" if engine == "auto" else label
            best = max(measure_rate(model.runner, x, streams, seconds) for _ in range(2))  # noisy machine
            rows.append((f"{shown} x{streams}", batch, best, chosen))
        for label, batch, ips, precision in rows:
            gflops = ips * flops / 1e9
            # Emulated bf16 matmul (CPUs without AMX / AVX-512 BF16) is slower than fp32: the fp32 peak
            # is then the honest ceiling for every setting.
            ref = max(peak["bf16"], peak["fp32"]) if precision == "bf16" else peak["fp32"]
            cells = f"{batch:>5} {ips:7.1f} {ips / base:5.2f}x {gflops:8.1f} {gflops / ref:6.1%}"
            print(f"{name:<20} {label:<40} {cells}")


def photos(count: int) -> list[Path]:
    if BIRDS.is_dir():
        return list(walk_images(BIRDS))[:count]
    root = Path(tempfile.mkdtemp(prefix="pixelsift-bench-"))
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)).save(root / f"{i:04d}.jpg")
    return sorted(root.glob("*.jpg"))


def end_to_end(files: list[Path], seconds_note: str) -> dict[str, list[str]]:
    print(f"\n## End to end from {len(files)} JPEG files, efficientnet_lite0 ({seconds_note})")
    spec = get_model_spec("efficientnet_lite0")
    net = load_network(spec)
    use_threads()  # the plain loop gets every core (a runner of 1-thread streams leaves torch at 1)
    start = time.perf_counter()
    plain = []
    with torch.inference_mode():
        for path in files:
            x = torch.from_numpy(spec.preprocessing(Image.open(path).convert("RGB")))[None]
            plain.append(spec.categories[int(net(x).argmax())])
    plain_rate = len(files) / (time.perf_counter() - start)
    print(f"{'setting':<28} {'img/s':>7} {'vs plain fp32 loop':>19}   (best of 2 runs each)")
    print(f"{'plain fp32 loop, batch 1':<28} {plain_rate:7.1f} {1.0:18.2f}x")
    labels = {"plain": plain}
    rates = {}
    for label, engine, precision in SETTINGS:
        if label in END_TO_END or not installed(engine):
            continue
        clf = Classifier("efficientnet_lite0", engine=engine, precision=precision, device="cpu")
        list(clf.iter_classify(files[:8]))
        best = 0.0
        for _ in range(2):  # best of two: this machine is shared and noisy
            start = time.perf_counter()
            labels[label] = [r.labels[0] for r in clf.iter_classify(files, top_k=1)]
            best = max(best, len(files) / (time.perf_counter() - start))
        ips = rates[label] = best
        print(f"{label:<28} {ips:7.1f} {ips / plain_rate:18.2f}x   {clf.model.runner.describe()}")
    fastest = max(v for k, v in rates.items() if k != "auto (the default)")
    print(f"auto vs the fastest single setting: {rates['auto (the default)'] / fastest:.1%}")
    end_to_end_limit(files, rates["auto (the default)"])
    return labels


def end_to_end_limit(files: list[Path], achieved: float) -> None:
    """cores / (decode + model), each measured alone on one core, against what `auto` reached."""
    from pixelsift.config import available_cpus
    from pixelsift.runtime import engines, tuning

    model = ImageModel.load("efficientnet_lite0", engine="auto", device="cpu", purpose="classify")
    start = time.perf_counter()
    pixels = [model.decode(f)[0] for f in files]
    decode = (time.perf_counter() - start) / len(files)
    choice = tuning.Candidate(model.engine, model.precision)
    runner = engines.build_runner(model.spec, model.network, RunOptions(device="cpu"), choice, threads=1)
    batch = np.stack(pixels[: int(runner.batch_size)])
    compute = 1.0 / tuning.measure_rate(runner, batch, streams=1, seconds=2.0)
    cores = available_cpus()
    limit = cores / (decode + compute)
    print(f"\n## End-to-end limit ({cores} cores, {choice.label}, {model.runner.streams} stream(s))")
    print(f"decode + preprocess: {decode * 1e3:.2f} core-ms/image; model: {compute * 1e3:.2f} core-ms/image")
    print(
        f"limit {cores} / ({decode * 1e3:.2f} + {compute * 1e3:.2f}) ms = {limit:.1f} images/s; "
        f"auto reached {achieved:.1f} = {achieved / limit:.0%} of it"
    )


def agreement(labels: dict[str, list[str]]) -> None:
    print(f"\n## Top-1 agreement with fp32 (efficientnet_lite0, real weights, {len(labels['plain'])} photos)")
    reference = labels["torch fp32 (runner)"]
    for label, found in labels.items():
        same = np.mean([a == b for a, b in zip(found, reference, strict=True)])
        print(f"{label:<28} {same:8.1%}")


def large_photos(seconds: float) -> None:
    print("\n## Large photos: 4000x3000 JPEG -> 256/224 preprocessing (efficientnet_lite0)")
    spec = get_model_spec("efficientnet_lite0")
    assert spec.preprocessing is not None
    folder = Path(tempfile.mkdtemp(prefix="pixelsift-large-"))
    rng = np.random.default_rng(0)
    files = []
    for i in range(4):
        small = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
        img.save(folder / f"big_{i}.jpg", quality=90)
        files.append(folder / f"big_{i}.jpg")
    pre = spec.preprocessing
    full = rate(lambda: [pre(open_image(f)) for f in files], len(files), seconds)
    draft = rate(lambda: [pre(open_image(f, min_size=pre.resize)) for f in files], len(files), seconds)
    model = ImageModel.load("efficientnet_lite0", device="cpu", precision="fp32")
    same = [
        int(model.run(pre(open_image(f))[None])[1].argmax())
        == int(model.run(pre(open_image(f, min_size=pre.resize))[None])[1].argmax())
        for f in files
    ]
    print(f"full decode: {full:6.1f} photos/s   draft decode: {draft:6.1f} photos/s", end="   ")
    print(f"speed-up {draft / full:.1f}x")
    print(f"same top-1 with and without draft: {sum(same)}/{len(same)}")
    decoders(files, pre, seconds)


def decoders(large: list[Path], pre, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Pillow's JPEG decoder against libjpeg-turbo through simplejpeg (both with DCT scaling), on the
    large photos and on real ones: decode + `Preprocessing.pixels`, one core."""
    from pixelsift.imaging import images

    real = photos(64)
    print("\n## JPEG decoders (decode + uint8 preprocessing, ms per photo, one core; best of the runs)")
    print(f"{'photos':<28} {'Pillow':>8} {'simplejpeg':>11} {'ratio':>6}  same pixels")
    for name, group in (("4000x3000 (draft 1/8)", large), (f"{len(real)} of the birds set", real)):
        datas = [f.read_bytes() for f in group]
        cost, out = {}, {}
        for which, setting in (
            ("Pillow", False),
            ("simplejpeg", None),
            ("Pillow", False),
            ("simplejpeg", None),
        ):
            images._turbo = setting  # None: simplejpeg when installed (the default); False: Pillow
            per = 1.0 / rate(
                lambda d=datas: [pre.pixels(open_image(x, min_size=pre.resize)) for x in d],
                len(datas),
                seconds,
            )
            cost[which] = min(cost.get(which, per), per)
            out[which] = [pre.pixels(open_image(x, min_size=pre.resize)) for x in datas]
        images._turbo = None
        same = all((a == b).all() for a, b in zip(out["Pillow"], out["simplejpeg"], strict=True))
        ratio = cost["Pillow"] / cost["simplejpeg"]
        print(
            f"{name:<28} {cost['Pillow'] * 1e3:8.2f} {cost['simplejpeg'] * 1e3:11.2f} {ratio:5.2f}x  {same}"
        )


def transfer_accuracy() -> None:
    if not BIRDS.is_dir():
        print("\n## Transfer accuracy: skipped (no ../shared/datasets/birds)")
        return
    import pixelsift

    print("\n## Transfer learning on the birds set: logreg on efficientnet_lite0 features")
    print(f"{'features':<22} {'valid':>6} {'vs fp32':>8} {'seconds':>8}")
    reference = None
    for label, engine, precision in (
        ("torch fp32", "torch", "fp32"),
        ("torch bf16 autocast", "torch", "bf16"),
        ("onnxruntime fp32", "onnxruntime", "fp32"),
        ("openvino bf16", "openvino", "bf16"),
        ("auto (the default)", "auto", None),
    ):
        if not installed(engine):
            continue
        start = time.perf_counter()
        result = pixelsift.train(BIRDS, precision=precision, engine=engine, cache=False)
        seconds = time.perf_counter() - start
        reference = result.valid_score if reference is None else reference
        print(f"{label:<22} {result.valid_score:6.3f} {result.valid_score - reference:+8.3f} {seconds:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="timing window per measurement")
    parser.add_argument("--models", default="efficientnet_lite0,resnet50,densenet121,mobilenet_v3_large")
    parser.add_argument("--photos", type=int, default=180)
    parser.add_argument("--sections", default="123456", help="which sections to run, e.g. 46")
    args = parser.parse_args()
    # Random timing weights and ONNX exports go to a throwaway cache, never the user's.
    os.environ["PIXELSIFT_HOME"] = tempfile.mkdtemp(prefix="pixelsift-bench-home-")
    models = args.models.split(",")
    cpu = detect_cpu_features()
    print(f"CPU features: {cpu.describe()}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"auto precision here: {ModelRunner(torch.nn.Conv2d(3, 3, 1), RunOptions(device='cpu')).precision}")
    peak = matmul_peak(args.seconds)
    print(f"matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    if "2" in args.sections:
        for name in models:
            ensure_random_weights(name)
        model_only(models, args.seconds, peak)
    if "3" in args.sections or "4" in args.sections:
        files = photos(args.photos)
        labels = end_to_end(files, "decode + preprocess + model, model load excluded")
        agreement(labels)
    if "5" in args.sections:
        large_photos(args.seconds)
    if "6" in args.sections:
        transfer_accuracy()


if __name__ == "__main__":
    main()
