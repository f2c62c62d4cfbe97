"""Batch jobs: images/s of the in-process embedding, `batch --cluster local` and `--cluster ray` with 1
and 2 workers, start-up apart from steady state, and the driver's peak memory, in one run.

    python benchmarks/bench_batch.py [--photos 1000] [--memory-photos 1000 10000]

Every measurement runs in a fresh process over the same folder of generated 640x480 JPEGs
(efficientnet_lite0, real weights, no feature cache):
  (a) in-process: `FeatureExtractor.iter_features`, what `pixelsift embed --no-cache` runs;
  (b) `pixelsift.batch.run("embed", ..., engine="local")`;
  (c) the same with engine="ray" (a local Ray cluster started by the run), 1 and 2 workers.
Start-up is imports and the model load (in-process and local: until the model is loaded; Ray: until
the first batch of results arrives: cluster start, actor start, model load and one batch of 32);
the steady rate is the photos after start-up / (total - start-up). Peak memory is the driver
process's maximum resident set (`ru_maxrss`), for (c) with --memory-photos photos. Prints the CPU
flags; ratios compare runs of this one invocation only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH = 32  # photos per worker call (the CLI's default)


def one(mode: str, photos: Path, out: Path) -> dict:
    """A single measurement (in its own process)."""
    started = time.perf_counter()
    if mode == "inprocess":
        from pixelsift.features.extractor import FeatureExtractor
        from pixelsift.imaging.images import expand_inputs
        from pixelsift.runtime.loaded import ImageModel

        sources = list(expand_inputs([photos]))
        ImageModel.load("efficientnet_lite0")  # what the extractor loads: start-up, as a worker's
        startup = time.perf_counter() - started
        extractor = FeatureExtractor("efficientnet_lite0", cache=False)
        count = sum(row.vector is not None for row in extractor.iter_features(sources))
        seconds = time.perf_counter() - started
    else:
        import pixelsift

        engine, workers = ("local", 1) if mode == "local" else ("ray", int(mode.split("-")[1]))
        cpus = 1.0 if workers == 1 else 0.9
        summary = pixelsift.batch.run(
            "embed", photos, out, engine=engine, workers=workers, cpus_per_worker=cpus, batch_size=BATCH
        )
        count, seconds, startup = summary.processed, summary.seconds, summary.startup_seconds
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Ray's start-up ends with the first batch of results: those photos are not in the steady part
    done_after = count - (BATCH if mode.startswith("ray") else 0)
    steady = done_after / (seconds - startup) if seconds > startup else 0.0
    return {
        "mode": mode,
        "photos": count,
        "seconds": seconds,
        "startup": startup,
        "steady": steady,
        "peak_mb": peak_mb,
    }


def measure(mode: str, photos: Path, work: Path) -> dict:
    out = work / f"out-{mode}-{time.time_ns()}"
    result = subprocess.run(
        [sys.executable, __file__, "--one", mode, str(photos), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one", nargs=3, metavar=("MODE", "PHOTOS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--memory-photos", type=int, nargs="*", default=[1000, 10000], help="none: skip")
    args = parser.parse_args()
    if args.one:
        mode, photos, out = args.one
        print(json.dumps(one(mode, Path(photos), Path(out))))
        return
    sys.path.insert(0, str(HERE))
    from bench_detect import generate_photos
    from bench_search import cpu_line

    print(cpu_line())
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        folder = work / "photos"
        generate_photos(folder, args.photos, (640, 480))
        print(f"\n## Throughput: {args.photos} generated 640x480 JPEGs, efficientnet_lite0, embed")
        print(f"{'run':<24} {'total s':>8} {'start-up s':>10} {'steady img/s':>13} {'vs in-process':>14}")
        rows = [measure(mode, folder, work) for mode in ("inprocess", "local", "ray-1", "ray-2")]
        base = rows[0]["steady"]
        for r in rows:
            ratio = r["steady"] / base if base else 0.0
            print(
                f"{r['mode']:<24} {r['seconds']:8.1f} {r['startup']:10.1f} {r['steady']:13.1f} {ratio:13.0%}"
            )
        if args.memory_photos:
            print("\n## Driver peak memory, --cluster ray, 1 worker")
        for count in args.memory_photos:
            many = work / f"photos-{count}"
            generate_photos(many, count, (320, 240), seed=1)
            r = measure("ray-1", many, work)
            print(f"{count:>7} photos: peak {r['peak_mb']:.0f} MB (steady {r['steady']:.1f} img/s)")


if __name__ == "__main__":
    main()
