"""`Evaluation`: predictions on labelled photos, as accuracy, per-class scores and a confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.paths import data_frame

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Evaluation:
    """Predictions on labelled photos: accuracy, per-class precision / recall, confusion matrix.

    Photos of a class the model does not know count as mistakes (`true` is -1 for them).
    """

    classes: list[str]
    paths: list[str]
    labels: list[str]  # true class names
    proba: np.ndarray  # (n, n_classes)
    failures: list[tuple[str, str]] = field(default_factory=list)  # unreadable photos, left out
    seen_in_training: int | None = None  # photos the model was trained on (None: it cannot tell)

    def __repr__(self) -> str:  # the arrays would flood a notebook cell
        failed = f", {len(self.failures)} unreadable" if self.failures else ""
        return (
            f"Evaluation(accuracy={self.accuracy:.3f}, {len(self.paths)} photos, "
            f"{len(self.classes)} classes{failed})"
        )

    @property
    def true(self) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.asarray([index.get(label, -1) for label in self.labels], dtype=np.int64)

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(self.proba, axis=1) if len(self.proba) else np.zeros(0, np.int64)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.true)) if self.paths else float("nan")

    @property
    def unknown_labels(self) -> list[str]:
        return sorted(set(self.labels) - set(self.classes))

    def per_class(self) -> pd.DataFrame:
        """precision, recall, f1 and support per class (index: class name)."""
        import pandas as pd
        from sklearn.metrics import precision_recall_fscore_support

        p, r, f, s = precision_recall_fscore_support(
            self.true, self.predicted, labels=list(range(len(self.classes))), zero_division=0
        )
        frame = pd.DataFrame(
            {"precision": p, "recall": r, "f1": f, "support": s}, index=pd.Index(self.classes, name="class")
        )
        return frame

    def confusion(self) -> pd.DataFrame:
        """Counts: rows are true classes (unknown ones last), columns predicted classes."""
        import pandas as pd

        rows = self.classes + self.unknown_labels
        counts = np.zeros((len(rows), len(self.classes)), dtype=np.int64)
        row_of = {c: i for i, c in enumerate(rows)}
        for label, pred in zip(self.labels, self.predicted, strict=True):
            counts[row_of[label], pred] += 1
        return pd.DataFrame(
            counts, index=pd.Index(rows, name="true"), columns=pd.Index(self.classes, name="predicted")
        )

    def predictions(self) -> pd.DataFrame:
        """One row per photo: path, true class, predicted class, its probability, correct or not."""
        pred = self.predicted
        return data_frame(
            {
                "path": self.paths,
                "true": self.labels,
                "predicted": [self.classes[i] for i in pred],
                "score": self.proba[np.arange(len(pred)), pred] if len(pred) else [],
                "correct": pred == self.true,
            }
        )

    def per_class_dict(self) -> dict[str, dict[str, float]]:
        frame = self.per_class()
        return {
            str(name): {
                "precision": float(row["precision"]),
                "recall": float(row["recall"]),
                "f1": float(row["f1"]),
                "support": int(row["support"]),
            }
            for name, row in frame.iterrows()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.accuracy,
            "n_images": len(self.paths),
            "classes": self.classes,
            "per_class": self.per_class_dict(),
            "confusion": self.confusion().values.tolist(),
            "unknown_classes": self.unknown_labels,
            "seen_in_training": self.seen_in_training,
        }


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy of `correct` out of `total` (0-1, 0-1 for none):
    how far a validation score measured on few photos may be from the truth."""
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)
