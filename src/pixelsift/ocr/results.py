"""What reading a photo's text gives: `TextReading` (one photo) of `TextLine`s of `TextWord`s.

Coordinates are pixels of the upright photo at its full size (EXIF orientation applied), like the
boxes of `pixelsift detect`. A line's `quad` is its four corners (top-left, top-right, bottom-right,
bottom-left as the text reads), so a slanted or rotated line keeps its true outline; `box` is the
axis-aligned rectangle around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

Box = tuple[float, float, float, float]
Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


def box_of(points: Sequence[Sequence[float]]) -> Box:
    """The axis-aligned rectangle (x1, y1, x2, y2) around `points`."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def _rounded(box: Sequence[float]) -> list[float]:
    return [round(float(v), 1) for v in box]


@dataclass(frozen=True)
class TextWord:
    """One word of a line: its text, the recogniser's confidence and its rectangle."""

    text: str
    score: float
    box: Box

    def scaled(self, factor: float) -> TextWord:
        x1, y1, x2, y2 = self.box
        return TextWord(self.text, self.score, (x1 * factor, y1 * factor, x2 * factor, y2 * factor))

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": round(self.score, 4), "box": _rounded(self.box)}


@dataclass(frozen=True)
class TextLine:
    """One line of text as read: the text, the recogniser's confidence (0-1), its outline and words.

    >>> line = TextLine("RE16 TGK", 0.99, ((10, 20), (90, 20), (90, 40), (10, 40)))
    >>> line.box, line.height
    ((10.0, 20.0, 90.0, 40.0), 20.0)
    """

    text: str
    score: float
    quad: Quad
    words: tuple[TextWord, ...] = ()

    @property
    def box(self) -> Box:
        return box_of(self.quad)

    @property
    def height(self) -> float:
        """The height of the letters: the shorter side of the outline (a vertical line's width)."""
        (x0, y0), (x1, y1), _, (x3, y3) = self.quad
        along = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        across = ((x3 - x0) ** 2 + (y3 - y0) ** 2) ** 0.5
        return float(min(along, across)) if along and across else float(max(along, across))

    def scaled(self, factor: float) -> TextLine:
        """The same line in pixels `factor` times larger."""
        (a, b, c, d) = ((x * factor, y * factor) for x, y in self.quad)
        return TextLine(self.text, self.score, (a, b, c, d), tuple(w.scaled(factor) for w in self.words))

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "score": round(self.score, 4),
            "box": _rounded(self.box),
            "quad": [_rounded(p) for p in self.quad],
            "words": [w.to_dict() for w in self.words],
        }


def reading_order(lines: Sequence[TextLine]) -> list[TextLine]:
    """Lines top to bottom, and left to right within a row: a line whose middle is within half a
    line's height of a row's middle joins that row, whatever the two lines' letter sizes.

    >>> big = TextLine("BIG", 0.9, ((0, 0), (90, 0), (90, 60), (0, 60)))
    >>> small = TextLine("small", 0.9, ((0, 70), (50, 70), (50, 90), (0, 90)))
    >>> side = TextLine("side", 0.9, ((100, 10), (150, 10), (150, 50), (100, 50)))
    >>> [line.text for line in reading_order([small, side, big])]
    ['BIG', 'side', 'small']
    """
    rows: list[tuple[float, float, list[TextLine]]] = []  # (middle, height, lines) of each row
    for line in sorted(lines, key=lambda line: (line.box[1] + line.box[3]) / 2):
        middle = (line.box[1] + line.box[3]) / 2
        if rows and abs(middle - rows[-1][0]) <= 0.5 * max(line.height, rows[-1][1]):
            rows[-1][2].append(line)
        else:
            rows.append((middle, line.height, [line]))
    return [line for _, _, row in rows for line in sorted(row, key=lambda line: line.box[0])]


@dataclass
class TextReading:
    """The text read in one photo: its lines in reading order (top to bottom, then left to right),
    or the error that kept the photo from being read (`error`, with no lines)."""

    path: str | None
    lines: list[TextLine] = field(default_factory=list)
    width: int = 0  # the upright photo's full size in pixels
    height: int = 0
    error: str | None = None
    image: Any = field(default=None, repr=False, compare=False)  # the decoded photo (`keep_images`)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """All the lines, one per line of the string."""
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.error is not None:
            out["error"] = self.error
            return out
        out |= {"width": self.width, "height": self.height, "text": self.text}
        out["lines"] = [line.to_dict() for line in self.lines]
        return out

    def to_pandas(self) -> pd.DataFrame:
        """One row per line: path, line (0-based), text, score, x1, y1, x2, y2, words."""
        return readings_frame([self])


class TextReadings(list[TextReading]):
    """The readings of many photos (a list) with their lines as one DataFrame: `to_pandas()`."""

    def to_pandas(self) -> pd.DataFrame:
        return readings_frame(self)

    def to_dict(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]


FRAME_COLUMNS = ["path", "line", "text", "score", "x1", "y1", "x2", "y2", "words", "error"]


def readings_frame(readings: Sequence[TextReading]) -> pd.DataFrame:
    """Many photos' lines as one DataFrame (a photo that could not be read is one row with its error;
    a photo without text has no row)."""
    import pandas as pd  # pandas only for the DataFrame view

    rows: list[dict[str, Any]] = []
    for reading in readings:
        if reading.error is not None:
            rows.append({"path": reading.path, "error": reading.error})
            continue
        for i, line in enumerate(reading.lines):
            x1, y1, x2, y2 = line.box
            rows.append(
                {
                    "path": reading.path,
                    "line": i,
                    "text": line.text,
                    "score": line.score,
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                    "words": [w.text for w in line.words],
                    "error": None,
                }
            )
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return frame.astype({"line": "Int64"})
