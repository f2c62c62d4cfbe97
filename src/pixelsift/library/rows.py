"""Typed rows of the photo index and the query records the store answers: what `library.store` reads
and writes, so that no other module handles SQL rows as tuples or dicts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple

from pixelsift.errors import UsageError
from pixelsift.library.metadata import PhotoMetadata

# the vector spaces of the index: the classifier's features, its probabilities over all its classes
# (word search sums them over a concept's classes), text-image vectors
FEATURES, PROBS, CLIP = "features", "probs", "clip"
OK, FAILED = "ok", "failed"  # a photo's status

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in the photo's full-resolution pixels


class StoredPhoto(NamedTuple):  # a tuple: a library of a million photos reads them all each run
    """What change detection needs of an indexed photo."""

    id: int
    size: int
    mtime_ns: int
    sha256: str | None
    status: str


@dataclass(frozen=True, slots=True)
class PhotoRecord:
    """One photo's entry as the indexer writes it (its id is the store's business)."""

    path: str  # relative to the library root, '/'-separated
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    error: str | None
    metadata: PhotoMetadata
    detector: str | None  # the detector that has looked at it, None when none has
    indexed_at: float


@dataclass(frozen=True, slots=True)
class PhotoRow:
    """Every column of one `photos` row, in table order."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    status: str
    error: str | None
    width: int | None
    height: int | None
    taken_at: str | None
    camera: str | None
    latitude: float | None
    longitude: float | None
    indexed_at: float
    detector: str | None


@dataclass(frozen=True, slots=True)
class LabelRow:
    kind: str  # "class" (the index's classifier), "custom" (a labeler) or "scene" (`imaging.scene`)
    source: str  # the classifier's or the labeler's name, or "scene"
    label: str
    score: float


@dataclass(frozen=True, slots=True)
class PhotoSummary:
    """What a search result shows of a photo besides its score and labels."""

    path: str
    taken_at: str | None
    camera: str | None


@dataclass(frozen=True, slots=True)
class Detection:
    """One object a detector found, as the index stores it."""

    label: str
    score: float
    box: Box
    area: float | None = None  # the object's own share of the photo, from an instance segmenter


class DetectionHit(NamedTuple):
    """A detection that a query matched: the box's share of the photo (None when the size is unknown),
    and, from an instance segmenter, the object's own share (`mask_area`)."""

    photo_id: int
    label: str
    score: float
    area: float | None
    mask_area: float | None = None

    @property
    def fill(self) -> float:
        """How much of the photo the object fills: its mask's share, else its box's (0 when unknown)."""
        return self.mask_area if self.mask_area is not None else (self.area or 0.0)


class TextRow(NamedTuple):
    """One line of text read in a photo, as the index stores it: `norm` is what search compares
    (`library.textmatch.normalize`), `size` the letters' height as a fraction of the photo's."""

    text: str
    norm: str
    score: float
    box: tuple[float, float, float, float]
    size: float
    words: tuple[tuple[str, float, float, float, float], ...] = ()


class TextHit(NamedTuple):
    """A stored line of text that a text query may match."""

    photo_id: int
    line_id: int
    text: str
    norm: str
    score: float
    size: float
    box: tuple[float, float, float, float]
    words: tuple[tuple[str, float, float, float, float], ...] = ()


class LabelHit(NamedTuple):
    """A custom label that a query matched."""

    photo_id: int
    source: str
    label: str
    score: float


@dataclass
class Term:
    """One understood concept of a query and everything it matches, each with a weight (1 = the word
    names it; less for later senses and for related concepts: "beach" -> seashore 0.6)."""

    text: str
    concepts: dict[str, float]  # ImageNet/COCO synset -> weight
    detection_names: dict[str, float]  # lower-case detector class name -> weight
    label_names: dict[str, float]  # custom (and non-ImageNet classifier) label names -> weight
    how: str = "word"  # "word" or "related" (see models.vocabulary.Meaning), "label", or "scene" (a region)
    via: tuple[str, ...] = ()  # for related words: the names of what they went through
    # detector classes above the word ("motorcycle" for "motorbike"): a box of one counts only as far as
    # the classifier confirms the word's own classes in the photo
    confirm: frozenset[str] = frozenset()

    def describe(self) -> str:
        """ "dog", or "beach (related: shore)" """
        if self.how == "related" and self.via:
            names = ", ".join(self.via[:4]) + (", ..." if len(self.via) > 4 else "")
            return f"{self.text} (related: {names})"
        return self.text


@dataclass
class Filters:
    after: str | None = None  # ISO date-time, inclusive
    before: str | None = None  # exclusive
    camera: str | None = None
    min_score: float | None = None
    match_all: bool = False  # list only photos that show every concept (`--all`), not a ranking
    folder: str | None = None  # a folder of the library ("2021/trip"): photos in it and below
    label: str | None = None  # a label or a detected object's class, by name ("tabby", "dog")

    @classmethod
    def parse(
        cls,
        after: str | None = None,
        before: str | None = None,
        camera: str | None = None,
        min_score: float | None = None,
        match_all: bool = False,
        folder: str | None = None,
        label: str | None = None,
    ) -> Filters:
        if min_score is not None and not 0 <= min_score <= 1:
            raise UsageError(f"--min-score must be between 0 and 1, not {min_score}")
        folder = "/".join(
            part for part in (folder or "").replace("\\", "/").split("/") if part not in ("", ".")
        )
        if ".." in folder.split("/"):
            raise UsageError(f"--folder {folder!r}: name a folder inside the library (no '..')")
        return cls(
            parse_date(after, "after"),
            parse_date(before, "before"),
            camera or None,
            min_score,
            match_all,
            folder or None,
            (label or "").strip() or None,
        )

    @property
    def active(self) -> bool:
        return bool(self.after or self.before or self.camera or self.folder or self.label)

    def describe(self) -> str:
        """ "taken before 2000-01-01 and with a camera matching 'pixel'" (for messages)."""
        parts = []
        if self.after:
            parts.append(f"taken on or after {self.after.replace('T00:00:00', '')}")
        if self.before:
            parts.append(f"taken before {self.before.replace('T00:00:00', '')}")
        if self.camera:
            parts.append(f"with a camera matching {self.camera!r}")
        if self.folder:
            parts.append(f"in the folder {self.folder!r}")
        if self.label:
            parts.append(f"labelled or showing {self.label!r}")
        return " and ".join(parts) or "left after the filters"


def parse_date(text: str | None, option: str) -> str | None:
    """ "2021", "2021-07", "2021-07-04" or a full ISO date-time -> "2021-07-04T00:00:00"."""
    if not text:
        return None
    for fmt in ("%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text.strip(), fmt).isoformat()
        except ValueError:
            continue
    raise UsageError(f"--{option} {text!r}: use a date like 2021, 2021-07 or 2021-07-04")


@dataclass
class PhotoDetails:
    """Everything the index knows about one photo (for display): its row, labels, detections and text."""

    row: PhotoRow
    labels: list[LabelRow] = field(default_factory=list)
    detections: list[tuple[str, Detection]] = field(default_factory=list)  # (detector, detection)
    unrecognised_by: list[str] = field(default_factory=list)  # labelers that did not recognise it
    text: list[TextHit] = field(default_factory=list)  # the lines read in it, in reading order

    def to_dict(self, full_path: str) -> dict[str, Any]:
        info: dict[str, Any] = {name: getattr(self.row, name) for name in PhotoRow.__dataclass_fields__}
        info["full_path"] = full_path
        info["labels"] = [
            {"kind": lab.kind, "source": lab.source, "label": lab.label, "score": lab.score}
            for lab in self.labels
        ]
        info["detections"] = [
            {"detector": detector, "label": d.label, "score": d.score, "box": list(d.box)}
            | ({} if d.area is None else {"area": d.area})
            for detector, d in self.detections
        ]
        info["unrecognised_by"] = list(self.unrecognised_by)
        info["text"] = [
            {
                "text": line.text,
                "score": line.score,
                "box": list(line.box),
                "words": [{"text": w[0], "box": list(w[1:5])} for w in line.words],
            }
            for line in self.text
        ]
        return info


@dataclass(frozen=True)
class LabelerEntry:
    """A custom labeler the library applies to new photos: its name, model file and the file's hash
    (a retrained model's old labels are stale)."""

    name: str
    path: str
    sha256: str


@dataclass(frozen=True)
class LibrarySettings:
    """What an index remembers between runs, read and written only by `LibraryStore.settings` and
    `LibraryStore.save_settings` (one row of the meta table per field, as indexes have always kept them).
    `detector` and `text_image` are as asked ("auto", "none" or a model); `text_image_model` is the
    model whose vectors the index holds."""

    root: str | None = None
    model: str | None = None
    embed_dim: int | None = None
    detector: str | None = None
    labelers: tuple[LabelerEntry, ...] = ()
    text_image: str | None = None
    text_image_model: str | None = None
    ocr: str | None = None  # "on" or "off" (`index --ocr` / `--no-ocr`); None: never asked (off)
    library_id: str | None = None

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> LibrarySettings:
        """From the meta table's rows; a value that does not parse is a ValueError naming its key."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = meta.get(f.name)
            if raw is None:
                continue
            try:
                if f.name == "embed_dim":
                    values[f.name] = int(raw)
                elif f.name == "labelers":
                    values[f.name] = tuple(
                        LabelerEntry(str(e["name"]), str(e["path"]), str(e["sha256"]))
                        for e in json.loads(raw)
                    )
                else:
                    values[f.name] = str(raw)
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"the index's {f.name!r} setting is damaged ({exc})") from None
        return cls(**values)

    def to_meta(self) -> dict[str, str]:
        """The meta rows of the fields that are set."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "labelers":
                out[f.name] = json.dumps(
                    [{"name": e.name, "path": e.path, "sha256": e.sha256} for e in value]
                )
            else:
                out[f.name] = str(value)
        return out
