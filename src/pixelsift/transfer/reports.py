"""Report files a person opens after training or evaluating: confusion matrix, sample predictions, metrics.

`write_report(folder, evaluation)` writes
- `confusion_matrix.png`: counts of true (rows) against predicted (columns) classes;
- `predictions.png`: a grid of validation photos titled "Predicted: X / True: Y", mistakes first and
  marked in red (title and frame), correct ones in green;
- `metrics.json`: accuracy, per-class precision / recall / f1, the confusion matrix and every
  photo's prediction, plus whatever the caller adds.

Figures are drawn with matplotlib's object API on the Agg canvas (extra `pixelsift[reports]`), so
writing a report never changes the plotting backend of a notebook.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.jsontext import to_json
from pixelsift.core.optional import optional_import
from pixelsift.errors import ImageError
from pixelsift.imaging.images import open_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pixelsift.transfer.evaluation import Evaluation

CORRECT, WRONG = "#1a7f37", "#cf222e"


@dataclass
class Report:
    folder: Path
    metrics: Path
    confusion_matrix: Path | None = None
    predictions: Path | None = None


def _figure(width: float, height: float) -> Figure:
    agg = optional_import("matplotlib.backends.backend_agg", "matplotlib", "reports", "Report images")
    from matplotlib.figure import Figure  # imported with the Agg backend

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")  # room for titles
    agg.FigureCanvasAgg(fig)
    return fig


def metrics_dict(evaluation: Evaluation, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report: the evaluation's numbers, each photo's prediction, and `extra`."""
    frame = evaluation.predictions()
    photos = [
        {"path": path, "true": true, "predicted": pred, "score": float(score), "correct": bool(ok)}
        for path, true, pred, score, ok in zip(
            frame["path"], frame["true"], frame["predicted"], frame["score"], frame["correct"], strict=True
        )
    ]
    return {**(extra or {}), "evaluation": evaluation.to_dict(), "photos": photos}


def plot_confusion_matrix(evaluation: Evaluation, path: Path, title: str = "") -> Path:
    confusion = evaluation.confusion()
    counts = confusion.to_numpy()
    rows, cols = list(confusion.index), list(confusion.columns)
    fig = _figure(max(5.5, 0.9 * len(cols) + 3.5), max(4.5, 0.8 * len(rows) + 2.5))
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(cols)), labels=cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), labels=rows)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if counts[i, j] > threshold else "black",
            )
    heading = f"accuracy {evaluation.accuracy:.3f} on {len(evaluation.paths)} photos"
    ax.set_title(f"{title}\n{heading}" if title else heading)
    fig.savefig(path)
    return path


def _pick_photos(evaluation: Evaluation, count: int) -> list[int]:
    """Mistakes first, then correct photos taken round-robin over the true classes."""
    pred, true = evaluation.predicted, evaluation.true
    wrong = [i for i in range(len(pred)) if pred[i] != true[i]]
    by_class: dict[str, list[int]] = {}
    for i in range(len(pred)):
        if pred[i] == true[i]:
            by_class.setdefault(evaluation.labels[i], []).append(i)
    chosen = wrong[:count]
    queues = list(by_class.values())
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def plot_predictions(
    evaluation: Evaluation, path: Path, title: str = "", count: int = 16, columns: int = 4
) -> Path:
    chosen = _pick_photos(evaluation, count)
    columns = max(1, min(columns, len(chosen)))
    n_rows = max(1, math.ceil(len(chosen) / columns))
    fig = _figure(3.2 * columns, 3.3 * n_rows + 0.6)
    pred = evaluation.predicted
    mistakes = int(np.sum(pred != evaluation.true))
    plural = "s" if mistakes != 1 else ""
    heading = f"{len(chosen)} of {len(evaluation.paths)} photos; {mistakes} mistake{plural} (in red)"
    fig.suptitle(f"{title}: {heading}" if title else heading)
    for slot, i in enumerate(chosen):
        ax = fig.add_subplot(n_rows, columns, slot + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        try:
            img = open_image(evaluation.paths[i], min_size=256)
            img.thumbnail((256, 256))
            ax.imshow(np.asarray(img))
        except ImageError as exc:
            ax.text(0.5, 0.5, exc.reason, ha="center", va="center", wrap=True, transform=ax.transAxes)
        correct = pred[i] == evaluation.true[i]
        colour = CORRECT if correct else WRONG
        text = f"Predicted: {evaluation.classes[pred[i]]} / True: {evaluation.labels[i]}"
        if len(text) > 40:
            text = text.replace(" / ", " /\n")
        ax.set_title(text, fontsize=9, color=colour)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(1 if correct else 4)
    fig.savefig(path)
    return path


def report_folder(model_path: str | os.PathLike[str]) -> Path:
    """The report folder beside a saved model: `birds.safetensors` -> `birds.report/`."""
    model = Path(model_path)
    return model.with_name(model.name.removesuffix(model.suffix) + ".report")


def write_report(
    folder: str | os.PathLike[str],
    evaluation: Evaluation,
    title: str = "",
    extra: dict[str, Any] | None = None,
) -> Report:
    """Write metrics.json, then the two images (which need matplotlib: `pixelsift[reports]`).

    >>> write_report("birds.report", result.valid, title="birds, logreg")   # doctest: +SKIP
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    metrics = target / "metrics.json"
    metrics.write_text(to_json(metrics_dict(evaluation, extra)) + "\n", encoding="utf-8")
    report = Report(target, metrics)
    report.confusion_matrix = plot_confusion_matrix(evaluation, target / "confusion_matrix.png", title)
    report.predictions = plot_predictions(evaluation, target / "predictions.png", title)
    return report
