"""The result types of object detection: `Detections` (the objects in one image) and `DetectionResult`.

`Detections` is a small supervision-style record of numpy arrays that checks its own shapes, with
adapters from each backend's raw output (`from_ultralytics`, `from_torchvision`, `from_opencv_ssd`)
and the views users want: `to_pandas()`, `to_dict()`, `filter()`, and `summary()` in ultralytics'
words ("4 persons, 2 cars, 1 stop sign").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.detect.labels import count_phrase
from pixelsift.detect.masks import Masks

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image


def _class_name(names: Sequence[str] | dict[int, str], class_id: int) -> str:
    """The name of a class id, or "class_N" when the model's label list does not cover it."""
    if isinstance(names, dict):
        return str(names.get(class_id, f"class_{class_id}"))
    return str(names[class_id]) if 0 <= class_id < len(names) else f"class_{class_id}"


@dataclass
class Detections:
    """The objects found in one image: N boxes (x1, y1, x2, y2 in pixels), scores, class ids and names,
    and, from a segmenter, each object's mask (`masks`, `pixelsift.detect.masks.Masks`).

    Arrays are converted to float32 / int64 and their shapes checked, so a malformed result fails
    where it is made, not three functions later.

    >>> d = Detections(np.array([[10, 20, 50, 80], [0, 0, 5, 5]]), np.array([0.9, 0.4]),
    ...                np.array([0, 2]), ["person", "car"])
    >>> len(d), d.summary()
    (2, '1 person, 1 car')
    >>> d.filter(min_score=0.5).class_names
    ['person']
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: list[str] = field(default_factory=list)
    masks: Masks | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32)
        self.boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids).astype(np.int64).reshape(-1)
        self.class_names = [str(n) for n in self.class_names]
        n = len(self.scores)
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape (N, 4), not {self.boxes.shape}")
        if len(self.boxes) != n or len(self.class_ids) != n or len(self.class_names) != n:
            raise ValueError(
                f"{len(self.boxes)} boxes, {n} scores, {len(self.class_ids)} class ids and "
                f"{len(self.class_names)} class names: they must be equally many"
            )
        if n and not np.isfinite(self.boxes).all():
            raise ValueError("boxes must be finite numbers")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"{len(self.masks)} masks for {n} objects: they must be equally many")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), [])

    @classmethod
    def from_arrays(
        cls,
        boxes: Any,
        scores: Any,
        class_ids: Any,
        names: Sequence[str] | dict[int, str],
        masks: Masks | None = None,
    ) -> Detections:
        """From arrays and a label list (or dict) indexed by class id (and masks in the same order);
        best score first."""
        scores_arr = np.asarray(scores, dtype=np.float32).reshape(-1)
        ids = np.asarray(class_ids).astype(np.int64).reshape(-1)
        order = np.argsort(-scores_arr, kind="stable")
        ids = ids[order]
        return cls(
            np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[order],
            scores_arr[order],
            ids,
            [_class_name(names, int(i)) for i in ids],
            None if masks is None else masks[order],
        )

    @classmethod
    def from_ultralytics(cls, result: Any) -> Detections:
        """From one ultralytics `Results` (what `YOLO(...).predict()` returns per image)."""
        boxes = result.boxes
        return cls.from_arrays(
            boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy(), result.names
        )

    @classmethod
    def from_torchvision(cls, output: dict[str, Any], categories: Sequence[str]) -> Detections:
        """From one torchvision detector output dict (boxes, scores, labels; labels index `categories`)."""
        return cls.from_arrays(
            output["boxes"].detach().float().cpu().numpy(),
            output["scores"].detach().float().cpu().numpy(),
            output["labels"].detach().cpu().numpy(),
            categories,
        )

    @classmethod
    def from_opencv_ssd(
        cls,
        output: np.ndarray,
        width: int,
        height: int,
        categories: Sequence[str],
        image_id: int | None = 0,
    ) -> Detections:
        """From OpenCV DNN's SSD output `[1, 1, N, 7]` rows (image id, class id, score, x1, y1, x2, y2),
        box corners as fractions of the image size; only the rows of `image_id` (None: all rows)."""
        rows = np.asarray(output, dtype=np.float32).reshape(-1, 7)
        if image_id is not None:
            rows = rows[rows[:, 0] == image_id]
        boxes = rows[:, 3:7] * np.array([width, height, width, height], np.float32)
        return cls.from_arrays(boxes, rows[:, 2], rows[:, 1], categories)

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float, int, str]]:
        """(box, score, class id, class name) per object."""
        for i in range(len(self)):
            yield self.boxes[i], float(self.scores[i]), int(self.class_ids[i]), self.class_names[i]

    def __getitem__(self, index: Any) -> Detections:
        """A subset: a boolean mask, an index array or a slice."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        picked = np.arange(len(self))[index]
        return Detections(
            self.boxes[picked],
            self.scores[picked],
            self.class_ids[picked],
            [self.class_names[i] for i in np.atleast_1d(picked)],
            None if self.masks is None else self.masks[np.atleast_1d(picked)],
        )

    def filter(self, classes: Iterable[str] | None = None, min_score: float | None = None) -> Detections:
        """Only objects of the named `classes` (None: all) scoring at least `min_score`."""
        keep = np.ones(len(self), dtype=bool)
        if classes is not None:
            wanted = set(classes)
            keep &= np.array([name in wanted for name in self.class_names], dtype=bool)
        if min_score is not None:
            keep &= self.scores >= min_score
        return self[keep]

    def scaled(self, sx: float, sy: float) -> Detections:
        """Boxes multiplied by (sx, sy): from a resized image's pixels to the original's."""
        factor = np.array([sx, sy, sx, sy], np.float32)
        masks = None if self.masks is None else self.masks.scaled(sx, sy)
        return Detections(self.boxes * factor, self.scores, self.class_ids, list(self.class_names), masks)

    def clipped(self, width: int, height: int) -> Detections:
        """Boxes clipped to the image; boxes left with no area are dropped."""
        boxes = self.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        clipped = Detections(boxes, self.scores, self.class_ids, list(self.class_names), self.masks)
        return clipped[keep]

    def counts(self) -> list[tuple[str, int]]:
        """(class name, count), most frequent first; ties keep the order of each class's best detection."""
        counter = Counter(self.class_names)
        first_seen = {name: i for i, name in reversed(list(enumerate(self.class_names)))}
        return sorted(counter.items(), key=lambda item: (-item[1], first_seen[item[0]]))

    def summary(self) -> str:
        """ "4 persons, 2 cars, 1 stop sign": counts with English plurals, most frequent first."""
        if not len(self):
            return "no objects"
        return ", ".join(count_phrase(count, name) for name, count in self.counts())

    def areas(self) -> np.ndarray | None:
        """Each object's mask area as a fraction of the image (None without masks)."""
        return None if self.masks is None else self.masks.areas()

    def to_list(self, shapes: bool = True) -> list[dict[str, Any]]:
        """One `{"label", "score", "box": [x1, y1, x2, y2]}` per object (the JSON the CLI prints); with
        masks also "area" (fraction of the image) and, with `shapes`, "polygons" (COCO's flat
        [x1, y1, x2, y2, ...] per outline, photo pixels) and "rle" (COCO compressed RLE)."""
        out = [
            {"label": name, "score": float(score), "box": [float(v) for v in box]}
            for box, score, _, name in self
        ]
        if self.masks is not None:
            for index, (item, area) in enumerate(zip(out, self.masks.areas(), strict=True)):
                item["area"] = round(float(area), 6)
                if shapes:
                    item["polygons"] = self.masks.polygons(index)
                    item["rle"] = self.masks.rle(index)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Column lists: boxes, scores, class_ids, class_names, with masks also areas (plain Python
        types, JSON-ready)."""
        out: dict[str, Any] = {
            "boxes": self.boxes.tolist(),
            "scores": self.scores.tolist(),
            "class_ids": self.class_ids.tolist(),
            "class_names": list(self.class_names),
        }
        if self.masks is not None:
            out["areas"] = self.masks.areas().tolist()
        return out

    def to_pandas(self) -> pd.DataFrame:
        """One row per object: label, score, x1, y1, x2, y2, class_id, and with masks "area" (fraction
        of the image; the masks themselves: `.masks.full()` or `.masks.mask(i)`)."""
        import pandas as pd

        columns: dict[str, Any] = {
            "label": self.class_names,
            "score": self.scores,
            "x1": self.boxes[:, 0],
            "y1": self.boxes[:, 1],
            "x2": self.boxes[:, 2],
            "y2": self.boxes[:, 3],
            "class_id": self.class_ids,
        }
        if self.masks is not None:
            columns["area"] = self.masks.areas()
        return pd.DataFrame(columns)


SPEED_KEYS = ("preprocess", "inference", "postprocess")


@dataclass
class DetectionResult:
    """One input (an image, or a video frame): its size and objects, or the reason it could not be read.

    `speed_ms` holds this input's share of preprocess (decode + resize), inference and postprocess time.
    `image` is the decoded photo, kept only when asked (to draw on it).
    """

    path: str
    width: int | None = None
    height: int | None = None
    detections: Detections | None = None
    error: str | None = None
    speed_ms: dict[str, float] = field(default_factory=dict)
    frame: int | None = None
    image: Image.Image | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.error is None and self.detections is None:
            raise ValueError(f"{self.path}: a result needs detections or an error")

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        return self.detections.summary() if self.detections is not None else f"error: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        """`{"path", "width", "height", "detections": [...], "speed_ms": {...}}` or `{"path", "error"}`;
        video frames also carry "frame"."""
        if self.error is not None or self.detections is None:
            return {"path": self.path, "error": self.error}
        out: dict[str, Any] = {"path": self.path}
        if self.frame is not None:
            out["frame"] = self.frame
        out.update(
            {
                "width": self.width,
                "height": self.height,
                "detections": self.detections.to_list(),
                "speed_ms": {key: float(self.speed_ms.get(key, 0.0)) for key in SPEED_KEYS},
            }
        )
        return out
