"""`pixelsift train`, `pixelsift predict`, `pixelsift evaluate`: your own classes on a pretrained network."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelsift.cli.classify import write_classifications
from pixelsift.cli.common import (
    add_cache_option,
    add_format_option,
    add_inputs_argument,
    add_runner_options,
    add_top_k_option,
    collect_inputs,
    run_options,
)
from pixelsift.cli.output import closing_line, error_line, format_score, format_table, to_json
from pixelsift.core.outputs import OutputNames, output_file
from pixelsift.errors import MissingDependencyError, UsageError
from pixelsift.models.registry import DEFAULT_CLASSIFIER

if TYPE_CHECKING:
    from pixelsift.transfer.evaluation import Evaluation
    from pixelsift.transfer.training import TrainResult

CLASSIFIER_NAMES = ("logreg", "svm", "knn", "forest", "mlp")

TRAIN_EXAMPLES = """examples:
  pixelsift train birds/                          logistic regression on efficientnet_lite0 features
  pixelsift train birds/ -c svm -o birds-svm.safetensors
  pixelsift train birds/ --search --format json   cross-validated choice of classifier and strength
  pixelsift train birds/ -m auto                  the backbone with the best cross-validated accuracy,
                                                  or the cheapest within --auto-margin of it
  pixelsift train birds/ -m efficientnet_lite0+efficientnet_lite2   an ensemble of two backbones
  pixelsift train birds/ --finetune --epochs 20 --hidden 256 --layers 2
  pixelsift train dishes/ --reject-test street-photos/   how many photos of other things it turns away

The data set is ROOT/train/<class>/*.jpg and ROOT/valid/<class>/*.jpg; without valid/, a stratified
hold-out of each class validates. Writes the model (one .safetensors file) and a report folder beside
it: confusion_matrix.png, predictions.png, metrics.json. Features are cached, so training another
classifier on the same photos does not run the network again. The model also learns which photos it
knows: used as a labeler of a photo library (`pixelsift index --labeler`), it labels only photos like
its training photos, so a street scene gets no dish.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    _add_train(subparsers)
    _add_predict(subparsers)
    _add_evaluate(subparsers)


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a classifier for your own classes (transfer learning)",
        description="Train a classifier for the classes of a labelled photo folder on a pretrained "
        "network's features (or fine-tune a new head with --finetune), print its scores, save it.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("root", metavar="ROOT", help="the data-set folder")
    p.add_argument(
        "-c",
        "--classifier",
        default="logreg",
        choices=CLASSIFIER_NAMES,
        help="logreg (default), svm (linear, calibrated), knn, forest, mlp",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="model file to write (default: ROOTNAME-CLASSIFIER.safetensors in the current folder, or "
        "ROOTNAME-CLASSIFIER-2.safetensors ... when that is taken)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing -o model file (default: refuse, before any training)",
    )
    p.add_argument(
        "--search",
        action="store_true",
        help="cross-validate a small grid of classifiers and strengths on the training split; keep the best",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        metavar="FRACTION",
        help="without a valid/ split: share of each class held out (default: 0.2)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (hold-out, classifiers, fine-tuning)")
    p.add_argument(
        "--reject-test",
        metavar="FOLDER",
        help="photos from outside your classes: report how many the model turns away as unknown",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report folder")
    auto = p.add_argument_group("choosing the backbone (-m auto)")
    auto.add_argument(
        "--candidates",
        metavar="NAME,NAME",
        help="the backbones -m auto compares (default: every classifier whose weights are on this machine)",
    )
    auto.add_argument(
        "--auto-margin",
        type=float,
        default=0.01,
        metavar="ACCURACY",
        help="a cheaper backbone this close to the best cross-validated accuracy is taken (default: 0.01)",
    )
    add_cache_option(p)
    add_format_option(p, ("table", "json"))
    ft = p.add_argument_group("fine-tuning (--finetune)")
    ft.add_argument("--finetune", action="store_true", help="train a torch head (and blocks) instead")
    ft.add_argument("--epochs", type=int, default=30, metavar="N", help="head epochs, at most (default: 30)")
    ft.add_argument(
        "--layers",
        type=int,
        default=0,
        metavar="N",
        help="also fine-tune the last N backbone blocks (default: 0)",
    )
    ft.add_argument(
        "--layer-epochs", type=int, default=5, metavar="N", help="epochs with unfrozen blocks (default: 5)"
    )
    ft.add_argument(
        "--hidden", type=int, default=0, metavar="N", help="hidden layer units (default: 0, none)"
    )
    ft.add_argument("--dropout", type=float, default=0.2, help="dropout before each layer (default: 0.2)")
    ft.add_argument("--lr", type=float, default=3e-3, help="learning rate (default: 0.003; blocks get 1/10)")
    ft.add_argument(
        "--augment-views",
        type=int,
        default=2,
        metavar="N",
        help="augmented copies of each photo for the head stage (default: 2)",
    )
    ft.add_argument(
        "--patience", type=int, default=5, metavar="N", help="early stopping patience in epochs (default: 5)"
    )
    add_runner_options(
        p,
        DEFAULT_CLASSIFIER,
        model_help="the backbone: a classifier from `pixelsift models`; auto (the best by cross-validation, "
        "see --candidates); or an ensemble, a+b (their features side by side)",
    )
    p.set_defaults(func=run_train)


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="classify photos with a model from `pixelsift train`",
        description="Top-k classes of a trained model (from `pixelsift train`) for photos.",
        epilog="examples:\n  pixelsift predict birds-logreg.safetensors new_photos/ -k 2\n"
        "  pixelsift predict birds-logreg.safetensors a.jpg --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_file", metavar="FILE", help="a model file written by `pixelsift train`")
    add_inputs_argument(p)
    add_top_k_option(p)
    _add_tta_option(p)
    add_format_option(p)
    add_cache_option(p)
    add_runner_options(p, None)
    p.set_defaults(func=run_predict)


def _add_tta_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tta",
        choices=("none", "flip"),
        default="none",
        help="test-time augmentation: flip averages each photo with its mirror image (twice the network "
        "work; default: none)",
    )


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a trained model on labelled photos",
        description="Accuracy, per-class precision / recall and the confusion matrix of a trained model "
        "on a data set's valid/ split (or another --split), or on a folder of class folders.",
        epilog="examples:\n  pixelsift evaluate birds-logreg.safetensors birds/\n"
        "  pixelsift evaluate birds-logreg.safetensors birds/ --split test --report test-report/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_file", metavar="FILE", help="a model file written by `pixelsift train`")
    p.add_argument("root", metavar="ROOT_OR_SPLIT", help="a data-set folder, or one split / class-folder set")
    p.add_argument("--split", default="valid", help="the split of a data-set folder (default: valid)")
    p.add_argument("--report", metavar="DIR", help="also write a report folder (images and metrics.json)")
    _add_tta_option(p)
    add_format_option(p, ("table", "json"))
    add_cache_option(p)
    add_runner_options(p, None)
    p.set_defaults(func=run_evaluate)


def _per_class_rows(evaluation: Evaluation) -> list[list[Any]]:
    frame = evaluation.per_class()
    return [
        [name, format_score(row["precision"]), format_score(row["recall"]), int(row["support"])]
        for name, row in frame.iterrows()
    ]


def _print_per_class(evaluation: Evaluation) -> None:
    print(
        format_table(
            ["class", "precision", "recall", "support"], _per_class_rows(evaluation), right=(1, 2, 3)
        )
    )


def _report_failures(failures: list[tuple[str, str]], total: int) -> None:
    for path, reason in failures:
        error_line(path, f"{reason} (skipped)")
    if failures:
        print(
            f"pixelsift: {len(failures)} of {total} photos could not be read and were skipped",
            file=sys.stderr,
        )


def _default_output(root: str, name: str) -> Path:
    return Path(f"{Path(root).resolve().name}-{name}.safetensors")


def _free_output(path: Path) -> Path:
    """`path`, or `STEM-2.safetensors`, `-3` ... when it or its `STEM.report` folder is taken: a default
    name never replaces a model trained before (an explicit -o does, with --force)."""
    from pixelsift.transfer.reports import report_folder  # imported when the command runs

    stem = OutputNames(path.parent).claim(path.stem, (path.suffix, report_folder(path).suffix), first=2)
    return path.with_name(stem + path.suffix)


def _train_result(args: argparse.Namespace) -> TrainResult:
    if args.finetune:
        # imported when the command runs: `pixelsift --help` stays fast
        from pixelsift.transfer.finetune import FinetuneOptions, finetune

        if args.search:
            raise UsageError(
                "--search chooses among scikit-learn classifiers; it does not combine with --finetune"
            )
        if args.model == "auto":
            raise UsageError(
                "-m auto compares backbones under a scikit-learn classifier; --finetune trains one backbone: "
                "name it with -m (or run `pixelsift train ROOT -m auto` first to see which is best)"
            )
        options = FinetuneOptions(
            epochs=args.epochs,
            layers=args.layers,
            backbone_epochs=args.layer_epochs,
            hidden=args.hidden,
            dropout=args.dropout,
            lr=args.lr,
            augment_views=args.augment_views,
            patience=args.patience,
            seed=args.seed,
        )
        return finetune(
            args.root,
            model=args.model,
            options=options,
            holdout=args.holdout,
            cache=not args.no_cache,
            progress=args.progress,
            run_options=run_options(args),
            reject_test=args.reject_test,
        )
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.transfer.training import train

    return train(
        args.root,
        model=args.model,
        classifier=args.classifier,
        search=args.search,
        holdout=args.holdout,
        seed=args.seed,
        cache=not args.no_cache,
        progress=args.progress,
        run_options=run_options(args),
        reject_test=args.reject_test,
        candidates=[c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None,
        margin=args.auto_margin,
        on_backbone=_say_backbone if args.model == "auto" else None,
    )


def _say_backbone(line: str) -> None:
    print(f"pixelsift: -m auto: {line}", file=sys.stderr, flush=True)


def _describe_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


FEW_VALIDATION = 30  # validation photos below which train warns that its score is rough


def run_train(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.transfer.reports import report_folder

    if args.output:  # checked before the training: the model file, and its report folder beside it
        target = output_file(args.output)
        if target.exists() and not args.force:
            raise UsageError(
                f"-o {target}: a model is already there; pass --force to replace it, or choose another name"
            )
        if not args.no_report and report_folder(target).exists() and not report_folder(target).is_dir():
            raise UsageError(
                f"{report_folder(target)}: a file is where the report folder goes; move it, pick another -o, "
                "or pass --no-report"
            )
    result = _train_result(args)
    model = result.model
    output = Path(args.output) if args.output else _free_output(_default_output(args.root, model.classifier))
    written = model.save(output)
    report_dir = None if args.no_report else report_folder(written)
    report_note = _write_report(result, report_dir) if report_dir else None
    for problem in result.data.dataset.structure_problems():
        print(f"pixelsift: warning: {problem.message}", file=sys.stderr)
    for warning in result.data.dataset.size_warnings():
        print(f"pixelsift: warning: {warning}", file=sys.stderr)
    if len(result.valid.paths) < FEW_VALIDATION:
        low, high = result.valid_interval
        print(
            f"pixelsift: warning: the validation score rests on {len(result.valid.paths)} photos: the true "
            f"accuracy may be anywhere from {low:.2f} to {high:.2f} (95%); add photos for a measure you can "
            "trust",
            file=sys.stderr,
        )
    total = len(result.train.paths) + len(result.valid.paths) + len(result.failures)
    _report_failures(result.failures, total)
    if args.format == "json":
        data = result.to_dict()
        data.update(
            output=str(written),
            report=str(report_dir) if report_dir else None,
            note=result.data.note,
            images_embedded=result.images_run,
        )
        print(to_json(data))
    else:
        _print_train(result, written, report_dir, report_note)
    if result.interrupted:
        best = min((h for h in result.history), key=lambda h: h["val_loss"])
        print(
            f"pixelsift: interrupted; saved the best model so far ({best['stage']} epoch {best['epoch']}, "
            f"validation loss {best['val_loss']:.3f}) to {written}",
            file=sys.stderr,
        )
        return 130
    return 1 if result.failures else 0


def _write_report(result: TrainResult, folder: Path) -> str | None:
    """Write the report; a missing matplotlib leaves metrics.json only and says how to get the images."""
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.transfer.reports import write_report

    title = f"{result.model.backbone} + {result.model.classifier}"
    try:
        write_report(folder, result.valid, title=title, extra=result.to_dict())
    except MissingDependencyError as exc:
        print(f"pixelsift: report images skipped: {exc}", file=sys.stderr)
        return "metrics.json only"
    return None


def _print_backbones(result: TrainResult) -> None:
    choice = result.backbones
    assert choice is not None
    print(
        f"Backbones (-m auto; {choice.classifier}, {choice.repeats}x{choice.folds}-fold CV "
        "on the training split):"
    )
    rows = [
        [
            ("* " if s.chosen else "  ") + s.backbone,
            format_score(s.cv_score),
            format_score(s.cv_std),
            f"{s.ms_per_photo:.1f}",
        ]
        for s in sorted(choice.scores, key=lambda s: -s.cv_score)
    ]
    print(format_table(["backbone", "cv score", "std", "ms/photo"], rows, right=(1, 2, 3)))
    print(f"Chosen: {choice.reason}")
    print()


def _print_train(
    result: TrainResult, written: Path, report_dir: Path | None, report_note: str | None
) -> None:
    model = result.model
    if result.search is not None:
        table = result.search.sort_values("cv_score", ascending=False, kind="stable")
        print("Search (cross-validation on the training split):")
        rows = [
            [
                r["classifier"],
                _describe_params(r["params"]),
                format_score(r["cv_score"]),
                format_score(r["cv_std"]),
            ]
            for r in table.to_dict(orient="records")
        ]
        print(format_table(["classifier", "parameters", "cv score", "std"], rows, right=(2, 3)))
        print()
    if result.backbones is not None:
        _print_backbones(result)
    dim = model.head.n_features
    params = (
        _describe_params(model.params) if model.classifier != "finetune" else _finetune_summary(model.params)
    )
    print(f"Model: {model.backbone} ({dim} features) + {model.classifier} ({params})")
    print(
        f"Data: {len(result.train.paths)} training and {len(result.valid.paths)} validation images, "
        f"{len(model.classes)} classes"
    )
    if result.data.note:
        print(f"Note: {result.data.note}")
    if result.history:
        last = result.history[-1]
        print(f"Epochs: {len(result.history)} (last: {last['stage']} stage, epoch {last['epoch']})")
    print(f"Training score {format_score(result.train_score)}")
    low, high = result.valid_interval
    print(
        f"Validation score {format_score(result.valid_score)} (95% interval {low:.2f}-{high:.2f} on "
        f"{len(result.valid.paths)} photos)"
    )
    gate = model.domain
    if gate is not None:
        line = "Unknown photos: turns away"
        if gate.valid_rejected is not None:
            line += f" {gate.valid_rejected:.1%} of its validation photos"
        check = result.reject_test
        if check is not None:
            line += f", {check.rate:.1%} of {check.folder} ({check.rejected} of {check.photos})"
        print(line + f" (distance > {gate.threshold:.3f} to every training photo)")
    print()
    _print_per_class(result.valid)
    print()
    where = f"; report in {report_dir}/" if report_dir else ""
    if report_note:
        where += f" ({report_note})"
    print(f"Saved {written}{where}")


def _finetune_summary(params: dict[str, Any]) -> str:
    keys = ("epochs", "layers", "hidden", "dropout", "lr", "augment_views")
    return ", ".join(f"{k}={params[k]}" for k in keys if k in params)


def run_predict(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.transfer.trained import load_trained

    started = time.perf_counter()
    model = load_trained(args.model_file)
    sources = collect_inputs(args.inputs)
    results = model.iter_predict(
        sources,
        top_k=args.top_k,
        progress=args.progress,
        total=len(sources),
        cache=not args.no_cache,
        run_options=run_options(args),
        tta=args.tta,
    )
    failed = write_classifications(results, args.format)
    closing_line("predicted", len(sources), failed, started, args.quiet)
    return 1 if failed else 0


def run_evaluate(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.transfer.trained import load_trained

    model = load_trained(args.model_file)
    evaluation = model.evaluate(
        args.root,
        split=args.split,
        progress=args.progress,
        cache=not args.no_cache,
        run_options=run_options(args),
        tta=args.tta,
    )
    _report_failures(evaluation.failures, len(evaluation.paths) + len(evaluation.failures))
    if args.report:
        # imported when the command runs: `pixelsift --help` stays fast
        from pixelsift.transfer.reports import write_report

        write_report(args.report, evaluation, title=f"{Path(args.model_file).name} on {args.root}")
    seen = evaluation.seen_in_training
    if seen:
        print(
            f"pixelsift: warning: {seen} of {len(evaluation.paths)} photos are ones this model was trained "
            "on: the score overstates how it does on new photos; evaluate on photos it has not seen (a "
            "data set's valid/ split, or a folder of new photos)",
            file=sys.stderr,
        )
    unknown = evaluation.unknown_labels
    if unknown:
        print(
            f"pixelsift: classes the model does not know count as mistakes: {', '.join(unknown)}",
            file=sys.stderr,
        )
    if args.format == "json":
        data = {"model_file": args.model_file, "root": args.root, **evaluation.to_dict()}
        data["failures"] = [{"path": p, "error": e} for p, e in evaluation.failures]
        print(to_json(data))
    else:
        print(f"Model: {model.backbone} + {model.classifier}, {len(model.classes)} classes")
        print(f"Data: {len(evaluation.paths)} images in {args.root}")
        print(f"Score {format_score(evaluation.accuracy)}")
        print()
        _print_per_class(evaluation)
        print()
        confusion = evaluation.confusion()
        print("Confusion matrix (rows: true class, columns: predicted):")
        rows = [
            [name, *map(int, counts)]
            for name, counts in zip(confusion.index, confusion.to_numpy(), strict=True)
        ]
        print(format_table(["", *confusion.columns], rows, right=tuple(range(1, len(confusion.columns) + 1))))
    return 1 if evaluation.failures else 0
