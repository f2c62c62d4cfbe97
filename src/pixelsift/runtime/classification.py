"""Classification results: the top-k classes of each photo, as the tables and JSON users see.

Numpy only, so a trained model's predictions (`pixelsift.transfer`) and their readers need no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.arrays import softmax, top_k_indices
from pixelsift.core.paths import data_frame

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Classification:
    """The top-k classes of one image (best first), or the reason it could not be read."""

    path: str
    labels: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    error: str | None = None
    # a trained model's verdict on whether the photo is like its training photos (None: not judged)
    recognised: bool | None = None

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.scores):
            raise ValueError(f"{len(self.labels)} labels but {len(self.scores)} scores")

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        preds = [{"label": lab, "score": s} for lab, s in zip(self.labels, self.scores, strict=True)]
        out: dict[str, Any] = {"path": self.path, "predictions": preds}
        if self.recognised is not None:
            out["recognised"] = self.recognised
        return out

    def to_pandas(self) -> pd.DataFrame:
        """The seed's table: one row per class, columns "Class" and "Probability score"."""
        import pandas as pd

        return pd.DataFrame({"Class": self.labels, "Probability score": self.scores})


class ClassificationResults(list[Classification]):
    """A list of `Classification`s in input order, failures included."""

    @property
    def failures(self) -> list[Classification]:
        return [r for r in self if not r.ok]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]

    def to_pandas(self) -> pd.DataFrame:
        """Long format, one row per (path, rank, label, score); a failed input is one row with its error."""
        rows: list[dict[str, Any]] = []
        for r in self:
            if not r.ok:
                rows.append({"path": r.path, "rank": None, "label": None, "score": None, "error": r.error})
            for rank, (label, score) in enumerate(zip(r.labels, r.scores, strict=True), start=1):
                rows.append({"path": r.path, "rank": rank, "label": label, "score": score, "error": None})
        frame = data_frame({c: [row[c] for row in rows] for c in ("path", "rank", "label", "score", "error")})
        return frame.astype({"rank": "Int64"})


def top_classes(
    probabilities: np.ndarray, categories: tuple[str, ...], k: int
) -> tuple[list[str], list[float]]:
    """The k most probable class names and their probabilities, best first (ties by class index)."""
    best = top_k_indices(probabilities, k)
    return [categories[i] for i in best], [float(probabilities[i]) for i in best]


def top_k_of(logits: np.ndarray, categories: tuple[str, ...], k: int) -> tuple[list[str], list[float]]:
    return top_classes(softmax(logits), categories, k)
