"""Labelled photo folders: `root/train/<class>/*`, `root/valid/<class>/*` (or just `root/<class>/*`).

`read_dataset` lists the samples (paths only, fast); `Dataset.stats()` is the per-class count table;
`Dataset.check()` reads every file and reports what would spoil training: empty class folders, a class
present in one split only, unreadable files, the same photo in two splits.

>>> ds = read_dataset("birds/")                      # doctest: +SKIP
>>> ds.stats()                                       # doctest: +SKIP
                      train  valid  total                         first sample
class
blue_grosbeak            48     12     60  train/blue_grosbeak/Blue_Grosbeak_0001.jpg
>>> ds.check().to_pandas()                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelsift.core.progress import progress_bar
from pixelsift.errors import ImageError, UsageError
from pixelsift.imaging.images import entry_is, file_sha256, image_extensions, open_image, walk_images
from pixelsift.imaging.pipeline import default_decode_workers

if TYPE_CHECKING:
    import pandas as pd

# Folder names that mean a split, and the name pixelsift reports for each.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "test": "test",
}
SPLIT_ORDER = ("train", "valid", "test")

FEW_PER_CLASS = 10  # photos per class below which `dataset` and `train` warn


@dataclass(frozen=True)
class Sample:
    """One labelled photo: its path, its class, and its split (None when the folder has no splits)."""

    path: Path
    label: str
    split: str | None


@dataclass
class Problem:
    """Something in a data set that would spoil training, with the files it concerns."""

    kind: str  # empty_class | class_in_one_split | unreadable | duplicate | stray_file
    message: str
    paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "paths": self.paths}


class Problems(list[Problem]):
    """The problems `Dataset.check` found, in a stable order."""

    def to_dicts(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self]

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [(p.kind, p.message, p.paths) for p in self], columns=["kind", "message", "paths"]
        )


@dataclass
class Dataset:
    """A labelled photo folder, read from disk by `read_dataset`."""

    root: Path
    splits: list[str]  # in SPLIT_ORDER; empty when the root holds class folders directly
    split_dirs: dict[str, Path]
    class_dirs: dict[tuple[str | None, str], Path]  # (split, class) -> folder, empty ones included
    samples: list[Sample]
    stray_files: list[Path] = field(default_factory=list)
    skipped: list[ImageError] = field(default_factory=list)  # entries that cannot be photos (link loops...)

    @property
    def classes(self) -> list[str]:
        """Every class folder name, sorted (a class in any split counts)."""
        return sorted({label for _, label in self.class_dirs})

    @property
    def has_splits(self) -> bool:
        return bool(self.splits)

    def samples_of(self, split: str | None) -> list[Sample]:
        return [s for s in self.samples if s.split == split]

    def counts(self) -> dict[str, dict[str, int]]:
        """{class: {split: images}}; the split is "all" when the folder has none."""
        table: dict[str, dict[str, int]] = {c: dict.fromkeys(self._split_columns(), 0) for c in self.classes}
        for s in self.samples:
            table[s.label][s.split or "all"] += 1
        return table

    def _split_columns(self) -> list[str]:
        return self.splits or ["all"]

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def first_samples(self) -> dict[str, str | None]:
        """The first photo (in split, then name order) of each class, relative to the root."""
        first: dict[str, str | None] = dict.fromkeys(self.classes)
        for s in self.samples:
            if first[s.label] is None:
                first[s.label] = self.relative(s.path)
        return first

    def stats(self) -> pd.DataFrame:
        """One row per class: images per split, total, and the first sample (the seed's table)."""
        import pandas as pd

        counts = self.counts()
        first = self.first_samples()
        rows = []
        for name in self.classes:
            per_split = counts[name]
            rows.append({**per_split, "total": sum(per_split.values()), "first sample": first[name]})
        columns = [*self._split_columns(), "total", "first sample"]
        frame = pd.DataFrame(rows, columns=columns, index=pd.Index(self.classes, name="class"))
        return frame

    def size_warnings(self) -> list[str]:
        """Warnings, not problems: classes with fewer than FEW_PER_CLASS photos (a classifier learns
        little from them, and a validation score on them says little)."""
        counts = self.counts()
        few = sorted(name for name in self.classes if 0 < sum(counts[name].values()) < FEW_PER_CLASS)
        if not few:
            return []
        smallest = min(sum(counts[name].values()) for name in few)
        return [
            f"{len(few)} class(es) with fewer than {FEW_PER_CLASS} photos ({', '.join(few[:5])}"
            f"{', ...' if len(few) > 5 else ''}; the smallest has {smallest}): a classifier learns little "
            "from so few, and a validation score on them says little; add photos"
        ]

    def structure_problems(self) -> Problems:
        """Problems visible from the folder structure alone (no file is read)."""
        problems = Problems()
        counts = self.counts()
        for (split, name), folder in sorted(self.class_dirs.items(), key=lambda kv: str(kv[1])):
            if counts[name][split or "all"] == 0:
                problems.append(
                    Problem("empty_class", f"empty class folder: {self.relative(folder)} has no images")
                )
        if len(self.splits) > 1:
            for name in self.classes:
                present = [sp for sp in self.splits if (sp, name) in self.class_dirs]
                if len(present) == 1:
                    problems.append(
                        Problem(
                            "class_in_one_split",
                            f"class {name!r} is only in {present[0]}/ (no folder in "
                            f"{', '.join(sp + '/' for sp in self.splits if sp not in present)})",
                        )
                    )
        if self.stray_files:
            problems.append(
                Problem(
                    "stray_file",
                    f"{len(self.stray_files)} image(s) outside any class folder are ignored, e.g. "
                    f"{self.relative(self.stray_files[0])}",
                    [str(p) for p in self.stray_files],
                )
            )
        return problems

    def check(
        self, read_files: bool = True, workers: int | None = None, progress: bool | None = False
    ) -> Problems:
        """All problems: the structural ones, plus (reading every file) unreadable files and photos
        that appear in more than one split (same content, whatever the name)."""
        problems = self.structure_problems()
        for skipped in self.skipped:  # link loops, FIFOs: entries that cannot even be opened
            where = self.relative(Path(skipped.path))
            problems.append(Problem("unreadable", f"{where}: {skipped.reason}", [skipped.path]))
        if not read_files or not self.samples:
            return problems

        digests: dict[str, list[Sample]] = defaultdict(list)
        with (
            ThreadPoolExecutor(workers or default_decode_workers()) as pool,
            progress_bar(total=len(self.samples), desc="check", enabled=progress) as bar,
        ):
            for sample, (digest, error) in zip(
                self.samples, pool.map(_read_and_hash, self.samples), strict=True
            ):
                bar.update(1)
                if error is not None:
                    problems.append(
                        Problem("unreadable", f"{self.relative(sample.path)}: {error}", [str(sample.path)])
                    )
                if digest is not None:
                    digests[digest].append(sample)
        for group in digests.values():
            if len({s.split for s in group}) > 1:
                names = ", ".join(self.relative(s.path) for s in group)
                problems.append(
                    Problem(
                        "duplicate",
                        f"same photo in more than one split: {names}",
                        [str(s.path) for s in group],
                    )
                )
        return problems


def _read_and_hash(sample: Sample) -> tuple[str | None, str | None]:
    """(sha256 of the file, reason it cannot be used as an image or None)."""

    try:
        digest = file_sha256(sample.path)
    except ImageError as exc:
        return None, exc.reason
    try:
        open_image(sample.path, min_size=64)  # draft-decodes large JPEGs: every byte is still checked
    except ImageError as exc:
        return digest, exc.reason
    return digest, None


def _subfolders(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot list this folder ({exc.strerror})") from None
    return [Path(e.path) for e in entries if not e.name.startswith(".") and entry_is(e, "dir")]


def _loose_images(folder: Path) -> list[Path]:
    exts = image_extensions()
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [
        Path(e.path)
        for e in entries
        if not e.name.startswith(".") and entry_is(e, "file") and os.path.splitext(e.name)[1].lower() in exts
    ]


def split_folders(root: Path) -> dict[str, Path]:
    """The split folders directly under `root` ({"train": root/"train", "valid": root/"val"} ...)."""
    found: dict[str, Path] = {}
    for folder in _subfolders(root):
        canonical = SPLIT_NAMES.get(folder.name.lower())
        if canonical is None:
            continue
        if canonical in found:
            raise UsageError(
                f"{root}: both {found[canonical].name}/ and {folder.name}/ mean the {canonical} split; "
                "rename one of them"
            )
        found[canonical] = folder
    return {name: found[name] for name in SPLIT_ORDER if name in found}


def read_dataset(root: str | os.PathLike[str]) -> Dataset:
    """Read a labelled folder: `root/<split>/<class>/...` or `root/<class>/...` (no splits).

    Split folders are train (or training), valid (or val, validation) and test. Images inside a
    class folder are found recursively; hidden files are skipped.

    >>> read_dataset("birds/").splits                   # doctest: +SKIP
    ['train', 'valid']
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UsageError(f"{base}: no such folder (expected ROOT/train/<class>/*.jpg or ROOT/<class>/*.jpg)")
    splits = split_folders(base)
    layout: dict[str | None, Path] = dict(splits.items()) if splits else {None: base}
    class_dirs: dict[tuple[str | None, str], Path] = {}
    samples: list[Sample] = []
    stray: list[Path] = []
    skipped: list[ImageError] = []
    for split, folder in layout.items():
        stray += _loose_images(folder)
        for class_dir in _subfolders(folder):
            class_dirs[(split, class_dir.name)] = class_dir
            samples += [
                Sample(p, class_dir.name, split) for p in walk_images(class_dir, on_skip=skipped.append)
            ]
    if not class_dirs:
        raise UsageError(
            f"{base}: no class folders found; a data set is ROOT/train/<class>/*.jpg and "
            "ROOT/valid/<class>/*.jpg, or ROOT/<class>/*.jpg"
        )
    return Dataset(base, list(splits), splits, class_dirs, samples, stray, skipped)


def looks_like_dataset(folder: Path) -> bool:
    """True when `folder` has split folders, or only class folders and no loose images."""
    if not folder.is_dir():
        return False
    if split_folders(folder):
        return True
    return bool(_subfolders(folder)) and not _loose_images(folder)


def holdout_split(
    samples: list[Sample], fraction: float = 0.2, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """A stratified hold-out: `fraction` of each class (at least one photo) goes to validation.

    Classes with a single photo stay wholly in training (they cannot be validated).
    """
    if not 0 < fraction < 1:
        raise UsageError("the hold-out fraction must be between 0 and 1")
    by_class: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_class[s.label].append(s)
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    valid: list[Sample] = []
    for label in sorted(by_class):
        group = by_class[label]
        order = rng.permutation(len(group))
        n_valid = max(1, round(fraction * len(group))) if len(group) >= 2 else 0
        held = set(order[:n_valid].tolist())
        for i, s in enumerate(group):
            (valid if i in held else train).append(s)
    return train, valid


def make_shapes_dataset(
    root: str | os.PathLike[str],
    classes: tuple[str, ...] = ("red_circle", "green_square", "blue_triangle", "yellow_cross"),
    train_per_class: int = 12,
    valid_per_class: int = 4,
    size: int = 160,
    noise: float = 40.0,
    seed: int = 0,
) -> Path:
    """Write a small synthetic data set (coloured shapes on noisy backgrounds) to try the commands on.

    Class names are `<colour>_<shape>` with colours red, green, blue, yellow, purple, orange and shapes
    circle, square, triangle, cross; shapes vary in size, position and rotation. `shapes.json` at the
    root records where each shape is (x1, y1, x2, y2 in pixels, by relative path), e.g. to check that an
    explanation looks at the shape.

    >>> make_shapes_dataset("shapes/")                  # doctest: +SKIP
    PosixPath('shapes')
    """
    from PIL import Image, ImageDraw

    colours = {
        "red": (220, 40, 40),
        "green": (40, 170, 60),
        "blue": (40, 70, 220),
        "yellow": (235, 210, 40),
        "purple": (140, 50, 170),
        "orange": (245, 140, 30),
    }
    rng = np.random.default_rng(seed)
    base = Path(root)
    where: dict[str, list[float]] = {}
    for split, count in (("train", train_per_class), ("valid", valid_per_class)):
        for name in classes:
            colour_name, shape = name.split("_", 1)
            colour = np.array(colours[colour_name])
            folder = base / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                background = rng.integers(90, 200, 3)
                pixels = rng.normal(background, noise, (size, size, 3))
                img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
                draw = ImageDraw.Draw(img)
                radius = rng.uniform(0.18, 0.32) * size
                cx, cy = rng.uniform(radius, size - radius, 2)
                fill = tuple(int(v) for v in np.clip(colour + rng.normal(0, 15, 3), 0, 255))
                angle = rng.uniform(0, np.pi)
                if shape == "circle":
                    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
                elif shape == "cross":
                    for a in (angle, angle + np.pi / 2):
                        dx, dy = np.cos(a) * radius, np.sin(a) * radius
                        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=fill, width=int(radius / 2.5))
                else:
                    corners = 4 if shape == "square" else 3
                    points = [
                        (
                            cx + radius * np.cos(angle + 2 * np.pi * k / corners),
                            cy + radius * np.sin(angle + 2 * np.pi * k / corners),
                        )
                        for k in range(corners)
                    ]
                    draw.polygon(points, fill=fill)
                img.save(folder / f"{name}_{i:03d}.jpg", quality=90)
                rel = f"{split}/{name}/{name}_{i:03d}.jpg"
                box = (cx - radius, cy - radius, cx + radius, cy + radius)
                where[rel] = [round(float(v), 1) for v in box]
    (base / "shapes.json").write_text(json.dumps(where, indent=1))
    return base
