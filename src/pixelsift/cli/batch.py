"""`pixelsift batch classify|embed|detect`: large jobs into Parquet shards, locally or on Ray."""

from __future__ import annotations

import argparse
import sys

from pixelsift.cli.common import add_runner_options, int_in, positive_float
from pixelsift.cli.output import to_json
from pixelsift.config import ENGINES as INFERENCE_ENGINES
from pixelsift.errors import UsageError
from pixelsift.models.registry import DEFAULT_TOP_K
from pixelsift.runtime.options import RunOptions

EXAMPLES = """examples:
  pixelsift batch embed photos/ -o out/                       this process, no Ray needed
  pixelsift batch classify manifest.txt -o out/ --cluster ray --cluster-workers 2
  pixelsift batch detect 'archive/**/*.jpg' -o out/ --cluster ray --address auto --gpus-per-worker 0.5
  pixelsift batch embed photos/ -o out/ --engine onnxruntime  the inference engine, as everywhere
  pixelsift batch embed photos/ -o out/ --resume              after Ctrl-C or a crash: only the rest

Inputs: folders (recursive), glob patterns, manifests (.txt one path a line; .csv or .parquet with a
`path` column). Output: OUT_DIR/part-NNNNN.parquet (one row per input: path, size, mtime_ns, sha256,
width, height, error, then the task's columns) and OUT_DIR/_job.json. Read it with
`pixelsift.batch.read(OUT_DIR)` or any Parquet reader.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "batch",
        help="classify, embed or detect large archives into Parquet (locally or on a Ray cluster)",
        description="Run a batch job over many photos; results go to Parquet shards in OUT_DIR.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for task, what in (
        ("classify", "top-k ImageNet classes"),
        ("embed", "feature vectors (with the top-k classes of the same forward pass and the scene regions)"),
        ("detect", "objects (label, score, box)"),
    ):
        t = tasks.add_parser(
            task,
            help=what,
            description=f"Batch job: {what} of every input.",
            epilog=EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        t.add_argument("inputs", nargs="+", metavar="INPUT", help="folders, files, glob patterns, manifests")
        t.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="the output folder")
        t.add_argument("-m", "--model", default=None, help="model name (default: the task's default model)")
        if task != "detect":
            t.add_argument(
                "-k", "--top-k", type=int_in(1), default=DEFAULT_TOP_K, metavar="K", help="classes per photo"
            )
        else:
            t.add_argument("--conf", type=float, default=0.25, help="minimum box score (default: 0.25)")
        if task == "embed":
            t.add_argument(
                "--normalize",
                default="l2",
                choices=("none", "l2"),
                help="l2: unit vectors, as `pixelsift embed` writes them (default); none: raw features "
                "(either way `index --from-batch` gets the raw features back: each row keeps its norm)",
            )
        t.add_argument(
            "--resume", action="store_true", help="keep the shards already in OUT_DIR, do the rest"
        )
        engine = t.add_argument_group("cluster")
        engine.add_argument(
            "--cluster",
            default=None,
            choices=CLUSTERS,
            help="local (default): this process; ray: a Ray cluster (pixelsift[ray])",
        )
        engine.add_argument("--address", default=None, help="a running Ray cluster (auto, ray://HOST:10001)")
        engine.add_argument(
            "--cluster-workers",
            type=int_in(1),
            default=None,
            metavar="N",
            help="model replicas on the cluster (Ray actors; default 1)",
        )
        engine.add_argument(
            "--workers",
            type=int_in(1),
            default=None,
            metavar="N",
            help="the old name of --cluster-workers, until the next release (elsewhere --workers means "
            "decode threads)",
        )
        engine.add_argument(
            "--cpus-per-worker",
            type=positive_float,
            default=1.0,
            metavar="X",
            help="CPUs per worker (fractions allowed)",
        )
        engine.add_argument(
            "--gpus-per-worker",
            type=float,
            default=0.0,
            metavar="X",
            help="GPUs per worker (0.5: two share one)",
        )
        engine.add_argument(
            "--batch-size", type=int_in(1), default=32, metavar="N", help="photos per worker call"
        )
        engine.add_argument(
            "--shard-size",
            type=int_in(1),
            default=1000,
            metavar="N",
            help="photos per Parquet file (default 1000)",
        )
        engine.add_argument(
            "--engine",
            default=None,
            choices=(*INFERENCE_ENGINES, *CLUSTERS),
            help="the inference engine, as on every command: auto (default: measured once per machine), "
            "torch, onnxruntime or openvino (local and ray: the old spelling of --cluster, until the next "
            "release)",
        )
        engine.add_argument(
            "--inference-engine",
            default=None,
            choices=INFERENCE_ENGINES,
            help="the old name of --engine, until the next release",
        )
        t.add_argument("--format", default="table", choices=("table", "json"), help="the summary's format")
        add_runner_options(t, None, batch=False, engine=False)
        t.set_defaults(func=run)


CLUSTERS = ("local", "ray")


def resolve_names(args: argparse.Namespace) -> tuple[str, str | None, int]:
    """(cluster, inference engine, cluster workers) from the flags, the old spellings included: batch's
    `--engine local|ray` is `--cluster`, its `--workers` `--cluster-workers` and its
    `--inference-engine` `--engine`; each old spelling still works, with a note, until the next release."""
    cluster, engine = args.cluster, args.engine
    if engine in CLUSTERS:
        _deprecated(f"--engine {engine}", f"--cluster {engine}")
        if cluster is not None and cluster != engine:
            raise UsageError(f"--engine {engine} (the old --cluster) and --cluster {cluster} disagree")
        cluster, engine = engine, None
    if args.inference_engine is not None:
        _deprecated(f"--inference-engine {args.inference_engine}", f"--engine {args.inference_engine}")
        if engine is not None and engine != args.inference_engine:
            raise UsageError(f"--inference-engine {args.inference_engine} and --engine {engine} disagree")
        engine = args.inference_engine
    workers = args.cluster_workers
    if args.workers is not None:
        _deprecated(f"--workers {args.workers}", f"--cluster-workers {args.workers}")
        if workers is not None and workers != args.workers:
            raise UsageError(
                f"--workers {args.workers} (the old --cluster-workers) and --cluster-workers {workers} "
                "disagree"
            )
        workers = args.workers
    return cluster or "local", engine, workers or 1


def _deprecated(old: str, new: str) -> None:
    print(
        f"pixelsift: note: `batch {old}` is now `batch {new}`; the old spelling goes in the next release",
        file=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.batch import run as run_batch

    if args.gpus_per_worker < 0:
        raise UsageError("--gpus-per-worker must be 0 or more")
    cluster, engine, workers = resolve_names(args)
    options = RunOptions(device=args.device, precision=args.precision, engine=engine, threads=args.threads)
    try:
        summary = run_batch(
            args.task,
            args.inputs,
            args.output,
            options,
            engine=cluster,
            model=args.model,
            top_k=getattr(args, "top_k", DEFAULT_TOP_K),
            conf=getattr(args, "conf", 0.25),
            normalize=getattr(args, "normalize", "l2"),
            resume=args.resume,
            shard_size=args.shard_size,
            batch_size=args.batch_size,
            workers=workers,
            cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=args.gpus_per_worker,
            address=args.address,
            progress=args.progress,
            verbose=bool(args.verbose),
        )
    except KeyboardInterrupt as stop:
        print(f"pixelsift: interrupted; the finished shards are kept ({stop}); --resume does the rest",
              file=sys.stderr)  # fmt: skip
        return 130
    if args.format == "json":
        print(to_json(summary.to_dict()))
    else:
        print(summary.line())
    if summary.failed:
        print(f"pixelsift: {summary.failed} inputs could not be read (rows with an error)", file=sys.stderr)
    return 1 if summary.failed else 0
