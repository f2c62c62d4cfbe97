"""`pixelsift models`: list the registry, download weights, import weights files."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from pixelsift.cli.common import add_format_option
from pixelsift.cli.output import format_table, to_json
from pixelsift.detect.api import default_model_names, runnable_problem
from pixelsift.errors import UsageError
from pixelsift.models import weights
from pixelsift.models.listing import model_record
from pixelsift.models.records import TASKS, ClassifierSpec, DetectorSpec
from pixelsift.models.registry import get_model_spec, list_models

EXAMPLES = """examples:
  pixelsift models                        all registered models and whether their weights are here
  pixelsift models list 'resnet*' --format json
  pixelsift models list 'timm/*convnext*' any timm model is usable as timm/<name>
  pixelsift models fetch densenet121      download (with progress) and verify the weights
  pixelsift models add vgg16 ~/Downloads/vgg16-397923af.pth
  pixelsift models export efficientnet_lite0 --format onnx -o lite0.onnx
  pixelsift models tune efficientnet_lite0  measure the engines here and remember the fastest
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list models, fetch or import their weights",
        description="The model registry: what pixelsift can run and whether the weights are on this machine.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="models_command", metavar="COMMAND")
    ls = sub.add_parser(
        "list",
        help="list models (the default)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for parser in (p, ls):
        parser.add_argument("--task", choices=TASKS, default=None, help="only models of this task")
        add_format_option(parser, ("table", "json"))
    ls.add_argument(
        "pattern", nargs="?", default="*", help="wildcard on the name, e.g. 'resnet*' or 'timm/*vit*'"
    )
    ls.set_defaults(func=run_list)
    p.set_defaults(func=run_list, pattern="*")

    fetch = sub.add_parser("fetch", help="download and verify the weights of models")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    fetch.set_defaults(func=run_fetch)

    add = sub.add_parser("add", help="import a weights file you already have (checked to fit the model)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("file", metavar="FILE", help="a state_dict saved by torch (.pth / .pt) or .safetensors")
    add.set_defaults(func=run_add)

    export = sub.add_parser(
        "export",
        help="export a model to ONNX, checked against torch",
        description="Export a classifier to ONNX (outputs: features, logits; dynamic batch) and report the "
        "largest difference from torch on check inputs. Without -o the file goes to the cache, where "
        "--engine onnxruntime finds it.",
    )
    export.add_argument("name", metavar="NAME")
    export.add_argument("--format", dest="export_format", choices=("onnx",), default="onnx")
    export.add_argument("-o", "--output", default=None, metavar="FILE", help="where to write the .onnx file")
    export.set_defaults(func=run_export)

    tune = sub.add_parser(
        "tune",
        help="measure every engine for a model on this machine and remember the fastest",
        description="Time each engine and precision that can run NAME here (torch fp32 / bf16, ONNX "
        "Runtime fp32 / int8, OpenVINO), keep those with the same top-1 class as fp32 on the check photos, "
        "and remember the fastest for `--engine auto` (the default). Runs by itself the first time a "
        "model is used; this command measures again and prints the table.",
    )
    tune.add_argument("name", metavar="NAME")
    tune.add_argument(
        "--purpose",
        choices=("classify", "features"),
        default=None,
        help="classify (int8 allowed) or features (fp32 / bf16 only); default: both",
    )
    tune.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    tune.add_argument(
        "--threads", type=int, default=None, help="compute threads (default: the CPUs available)"
    )
    add_format_option(tune, ("table", "json"))
    tune.set_defaults(func=run_tune)

    info = sub.add_parser("info", help="everything the registry knows about one model")
    info.add_argument("name", metavar="NAME")
    add_format_option(info, ("table", "json"))
    info.set_defaults(func=run_info)


def _timm_listing(pattern: str) -> list[dict[str, Any]]:
    try:
        import timm
    except ImportError:
        raise UsageError("listing timm models needs timm: pip install 'pixelsift[timm]'") from None
    names = timm.list_models(pattern[len("timm/") :] or "*", pretrained=True)
    return [{"name": "timm/" + n, "task": "classify", "source": "timm"} for n in names]


def run_list(args: argparse.Namespace) -> int:
    pattern = args.pattern
    if pattern.startswith("timm/"):
        records = _timm_listing(pattern)
        if args.format == "json":
            print(to_json(records))
        else:
            print("\n".join(r["name"] for r in records))
        return 0
    specs = list_models(pattern, task=args.task)
    defaults = default_model_names()
    records = [model_record(s, defaults, runnable_problem(s)) for s in specs]
    if args.format == "json":
        print(to_json(records))
        return 0
    if not specs:
        print(f"no model matches {pattern!r}", file=sys.stderr)
        return 1
    rows: list[tuple[Any, ...]] = [
        (
            r["name"] + (" *" if r["default"] else "") + ("" if r["usable"] else " !"),
            r["task"],
            r["source"],
            r["input_size"] or "-",
            r["embed_dim"] or "-",
            f"{r['imagenet_top1']:.1f}" if r["imagenet_top1"] else "-",
            r["weights"],
            r["licence"].split(" ")[0],
        )
        for r in records
    ]
    headers = ["name", "task", "source", "input", "embed", "top-1", "weights", "licence"]
    numbers: tuple[int, ...] = (3, 4, 5)
    if all(r.get("coco_map") for r in records):  # only detectors: their published COCO box mAP
        headers.insert(6, "mAP")
        numbers = (3, 4, 5, 6)
        rows = [
            (*row[:6], f"{r['coco_map']:.1f}" if r.get("coco_map") else "-", *row[6:])
            for row, r in zip(rows, records, strict=True)
        ]
    print(format_table(headers, rows, right=numbers))
    chosen = "; ".join(f"{task}: {name}" for task, name in defaults.items())
    print(
        f"\n* default ({chosen}).  weights: packaged = ships with an installed package, cached = in "
        f"{weights.get_settings().weights_dir}, missing = `pixelsift models fetch NAME`.\n"
        "Any timm model also works as timm/<name> (list them: pixelsift models list 'timm/*resnet*')."
    )
    for r in records:
        if not r["usable"]:
            print(f"! {r['name']} cannot run on this machine: {r['problem']}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    for name in args.names:
        spec = get_model_spec(name)
        status = weights.weights_status(spec)
        path = weights.fetch(spec, progress=args.progress is not False)
        verb = "already " + status if status != weights.MISSING else "downloaded and verified"
        print(f"{name}: {verb}: {path}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    spec = get_model_spec(args.name)
    path, verified = weights.add(spec, args.file)
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.runtime.loaded import clear_model_cache

    clear_model_cache()
    if verified is False:
        print(
            f"pixelsift: warning: {args.file} loads into {spec.name} but its sha256 differs from the "
            "published weights; it was imported as a custom file.",
            file=sys.stderr,
        )
    note = {True: " (matches the published sha256)", False: "", None: ""}[verified]
    print(f"{spec.name}: imported {args.file} -> {path}{note}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.runtime.loaded import load_split_network
    from pixelsift.runtime.onnx_runner import export_onnx, export_to_cache

    spec = get_model_spec(args.name)
    if not isinstance(spec, ClassifierSpec):
        raise UsageError(f"export supports classifiers; {spec.name!r} is a {spec.task} model")
    network = load_split_network(spec)
    report = export_onnx(spec, network, Path(args.output)) if args.output else export_to_cache(spec, network)
    print(f"{spec.name}: exported to {report.path}")
    print(f"  largest |onnxruntime - torch| on the logits of 4 check images: {report.max_abs_diff:.3g}")
    print(f"  same top-1 class: {report.top1_agreement:.0%}  ({report.seconds:.1f} s)")
    if not report.matches:
        print("pixelsift: error: the exported model does not match torch", file=sys.stderr)
        return 1
    return 0


def run_tune(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.runtime.engines import auto_tuning
    from pixelsift.runtime.loaded import load_split_network
    from pixelsift.runtime.options import RunOptions

    spec = get_model_spec(args.name)
    options = RunOptions(device=args.device, threads=args.threads, engine="auto")
    if isinstance(spec, DetectorSpec) and spec.preprocessing is not None:  # a detector run by the engines
        from pixelsift.detect.api import engine_network

        tuned = auto_tuning(spec, engine_network(spec), options, force=True)
        purposes = ["detect"]
    elif isinstance(spec, ClassifierSpec):
        tuned = auto_tuning(spec, load_split_network(spec), options, force=True)
        purposes = [args.purpose] if args.purpose else ["classify", "features"]
    else:
        raise UsageError(
            f"tune measures classifiers and the detectors pixelsift runs itself; {spec.name!r} runs in "
            f"its own backend ({getattr(spec, 'backend', spec.task)})"
        )
    if args.format == "json":
        chosen = {p: asdict(tuned.choice(p)) for p in purposes}
        print(to_json({"model": spec.name, **tuned.to_dict(), "chosen": chosen}))
        return 0
    for purpose in purposes:
        best = tuned.choice(purpose)
        what = {
            "classify": "classification (int8 allowed)",
            "features": "features (fp32 / bf16 only)",
            "detect": "detection (fp32 / bf16 only)",
        }[purpose]
        print(f"{spec.name}, for {what}:")
        print(tuned.table(purpose))
        print(
            f"chosen: {best.engine} {best.precision}, {best.streams} stream(s) x {best.threads} thread(s)\n"
        )
    print(f"measured in {tuned.seconds:.1f} s; `--engine auto` (the default) uses these choices")
    return 0


def run_info(args: argparse.Namespace) -> int:
    spec = get_model_spec(args.name)
    record = model_record(spec, default_model_names(), runnable_problem(spec))
    if args.format == "json":
        print(to_json(record))
    else:  # one line per field, as the other commands' tables
        print(format_table(["field", "value"], [(key, _shown(value)) for key, value in record.items()]))
    return 0


def _shown(value: object) -> str:
    """A record's value on one line: "-" for nothing, lists joined by spaces, mappings as "key value; ..."."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return "; ".join(f"{k} {_shown(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return " ".join(_shown(v) for v in value)
    return str(value)
