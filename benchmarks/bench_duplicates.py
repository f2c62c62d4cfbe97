"""How alike a photo's edited copies are to it, against how alike different photos are: the threshold
of `pixelsift duplicates` (`library.duplicates.NEAR_THRESHOLD`), with its precision and recall.

    python benchmarks/bench_duplicates.py [--photos 200] [--model efficientnet_lite0]

Originals: the photos of `../shared/photos` (committed and dev-only) and of
`../shared/datasets/searchlib` (real scenes in themed rows of about 30: different photos of the same
kind of scene, the hard negatives). Each original gets edited copies, as a photo library collects them:
resized to half, recompressed as JPEG quality 30, cropped by 5% on every side, brightened by 15%, and
a burst-like neighbour (shifted by 3% and slightly rotated). A pair is a duplicate when one is an edit
of the other; every other pair of originals is not. The cosine of the classifier's L2-normalised
features (what the index keeps) is computed for all pairs; for each threshold the benchmark prints the
share of duplicate pairs at or above it (recall) and the share of pairs at or above it that are
duplicates (precision).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EDITS = ("half size", "jpeg q30", "crop 5%", "brighter", "burst")


def edited(img: object, how: str) -> object:
    from PIL import Image, ImageEnhance

    assert isinstance(img, Image.Image)
    w, h = img.size
    if how == "half size":
        return img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BILINEAR)
    if how == "jpeg q30":
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=30)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if how == "crop 5%":
        return img.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95)))
    if how == "brighter":
        return ImageEnhance.Brightness(img).enhance(1.15)
    # a burst: the camera moved a little between two shots
    return img.rotate(2, resample=Image.Resampling.BILINEAR).crop((int(w * 0.03), 0, w, h))


def _edit(path: Path) -> int:
    """Which edit a copy is (its position after the original in the file list)."""
    return next(
        i for i, how in enumerate(EDITS) if path.stem.endswith(how.replace(" ", "-").replace("%", ""))
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=200, help="originals at most (default 200)")
    parser.add_argument("--model", default="efficientnet_lite0")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from PIL import Image

    import pixelsift
    from pixelsift.core.arrays import l2_normalize

    sources = sorted((SHARED / "photos").glob("*.jpg")) + sorted((SHARED / "photos").glob("*.png"))
    sources += sorted((SHARED / "photos" / "dev-only").glob("*.*"))
    sources += sorted((SHARED / "datasets" / "searchlib" / "photos").glob("*.jpg"))
    rng = np.random.default_rng(0)
    sources = [s for s in sources if s.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if len(sources) > args.photos:
        sources = [sources[i] for i in sorted(rng.choice(len(sources), args.photos, replace=False))]
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as tmp:
        folder = Path(tmp)
        files: list[Path] = []
        original_of: list[int] = []
        for i, source in enumerate(sources):
            img = Image.open(source).convert("RGB")
            path = folder / f"{i:04d}-original.png"
            img.save(path)
            files.append(path)
            original_of.append(i)
            for how in EDITS:
                copy = folder / f"{i:04d}-{how.replace(' ', '-').replace('%', '')}.png"
                edited(img, how).save(copy)
                files.append(copy)
                original_of.append(i)
        print(f"{len(sources)} originals, {len(files) - len(sources)} edited copies ({', '.join(EDITS)})")
        vectors = l2_normalize(
            pixelsift.embed([str(f) for f in files], model=args.model, normalize="none").vectors
        )
    groups = np.array(original_of)
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(files), 1)
    same = groups[upper[0]] == groups[upper[1]]
    is_original = np.array([f.stem.endswith("original") for f in files])
    # negatives: pairs of different originals (edits of two different photos add nothing new)
    between = (~same) & is_original[upper[0]] & is_original[upper[1]]
    s_dup, s_other = sims[upper][same], sims[upper][between]
    print(f"{s_dup.size} duplicate pairs, {s_other.size} pairs of different photos")
    print("\nthreshold  recall  precision  (different-photo pairs at or above)")
    for t in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96):
        tp, fp = int((s_dup >= t).sum()), int((s_other >= t).sum())
        precision = tp / (tp + fp) if tp + fp else float("nan")
        print(f"  {t:.2f}     {tp / s_dup.size:.3f}   {precision:.4f}     {fp}")
    # what `pixelsift duplicates` reports: groups linked pairwise (library.duplicates.near_groups)
    from pixelsift.library.duplicates import near_groups

    ids = np.arange(len(files))
    print("\nas groups (near_groups): copies grouped with their original, and photos wrongly grouped")
    print("threshold  copies found  groups  groups holding two different originals (photos in them)")
    for t in (0.75, 0.80, 0.85, 0.88, 0.90, 0.92):
        groups = near_groups(ids, vectors, t)
        group_of = {k: g for g, group in enumerate(groups) for k in group.ids}
        copies = [k for k in range(len(files)) if not is_original[k]]
        found = sum(group_of.get(k, -1) == group_of.get(k - 1 - _edit(files[k]), -2)
                    for k in copies)  # fmt: skip
        mixed = [g for g in groups if len({original_of[k] for k in g.ids}) > 1]
        print(f"  {t:.2f}     {found / len(copies):.3f}         {len(groups):4d}    {len(mixed)} "
              f"({sum(len(g.ids) for g in mixed)})")  # fmt: skip
    print("\nper edit: median cosine to its original, and the lowest")
    for how in EDITS:
        key = how.replace(" ", "-").replace("%", "")
        rows = [k for k, f in enumerate(files) if f.stem.endswith(key)]
        values = [sims[k, k - 1 - EDITS.index(how)] for k in rows]
        print(f"  {how:10s} median {np.median(values):.3f}  lowest {np.min(values):.3f}")
    print(f"different photos: 99th percentile {np.percentile(s_other, 99):.3f}, highest {s_other.max():.3f}")


if __name__ == "__main__":
    main()
