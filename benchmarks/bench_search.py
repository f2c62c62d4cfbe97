"""Search quality on a labelled library: precision@5, recall@10 and mean average precision per query,
for this checkout and for a baseline commit, in one run.

    python benchmarks/bench_search.py [--baseline ee61d74] [--birds 60] [--shapes 40] [--calibrate]
    python benchmarks/bench_search.py --models efficientnet_lite0,efficientnet_lite2   (index classifiers)

The library is built in a temporary folder from `../shared/photos` (the committed and the dev-only
photos, each tagged by hand below with what it shows), photos of `../shared/datasets/birds` (tagged
bird and animal) and generated images of coloured shapes (tagged with nothing: they must match no
query). Each version indexes the same folder with its default classifier and detector, in its own
process (the baseline from a `git worktree` of `--baseline`), and answers the same queries; the
metrics come from the ranked results:
- precision@5 = relevant photos among the first min(5, R) results / min(5, R), R = relevant photos
  (a query with one right photo scores 1 when that photo comes first);
- recall@10 = relevant photos among the first 10 / R; AP = average precision over the first 20;
- for a query whose concept is absent from the library (R = 0): "listed" = photos listed above the
  default minimum score (the target is 0); its precision and AP are left out of the means.
`--calibrate` also prints the logistic fit of relevance on the classifier's concept mass and on the
best detection score (the Platt coefficients of `pixelsift.library.fusion.Calibration`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# What each sample photo shows (tags are the words of the queries below).
PHOTO_TAGS: dict[str, set[str]] = {
    "astronaut.png": {"person"},
    "chelsea.png": {"cat", "animal"},
    "coffee.png": {"coffee", "cup", "drink"},
    "grace_hopper.jpg": {"person"},
    "rocket.jpg": {"rocket"},
    "aero1.jpg": {"city"},
    "apple.jpg": {"apple", "fruit", "food"},
    "baboon.jpg": {"monkey", "animal"},
    "basketball.png": {"person", "ball"},
    "building.jpg": {"building"},
    "butterfly.jpg": {"butterfly", "insect", "animal"},
    "chicky.png": {"dog", "animal"},
    "dog.jpg": {"dog", "bicycle", "car", "animal"},
    "eagle.jpg": {"bird", "animal"},
    "fruits.jpg": {"fruit", "food", "orange", "lemon"},
    "giraffe.jpg": {"giraffe", "zebra", "animal"},
    "horses.jpg": {"horse", "animal"},
    "kite.jpg": {"kite", "person", "beach", "water"},
    "lake.jpg": {"lake", "water"},
    "messi5.jpg": {"person", "ball"},
    "orange.jpg": {"orange", "fruit", "food"},
    "person.jpg": {"person", "dog", "horse", "animal"},
    "plant.jpg": {"plant"},
    "robin.jpg": {"bird", "animal"},
    "squirrel.jpg": {"squirrel", "animal"},
    "starry_night.jpg": {"painting"},
    "tree.jpg": {"tree", "plant"},
}
BIRD_TAGS = {"bird", "animal"}

# (query, kind, what is relevant: alternatives (OR) of tag sets (AND)), kinds: word, plural, synonym,
# phrase, and (two concepts), misspell (a typo of a word), absent (nothing in the library shows it).
QUERIES: list[tuple[str, str, list[set[str]]]] = [
    ("cat", "word", [{"cat"}]),
    ("dog", "word", [{"dog"}]),
    ("bird", "word", [{"bird"}]),
    ("horse", "word", [{"horse"}]),
    ("fruit", "word", [{"fruit"}]),
    ("animal", "word", [{"animal"}]),
    ("butterfly", "word", [{"butterfly"}]),
    ("squirrel", "word", [{"squirrel"}]),
    ("giraffe", "word", [{"giraffe"}]),
    ("monkey", "word", [{"monkey"}]),
    ("orange", "word", [{"orange"}]),
    ("bicycle", "word", [{"bicycle"}]),
    ("kite", "word", [{"kite"}]),
    ("lake", "word", [{"lake"}]),
    ("person", "word", [{"person"}]),
    ("cats", "plural", [{"cat"}]),
    ("dogs", "plural", [{"dog"}]),
    ("birds", "plural", [{"bird"}]),
    ("horses", "plural", [{"horse"}]),
    ("people", "plural", [{"person"}]),
    ("kitty", "synonym", [{"cat"}]),
    ("puppy", "synonym", [{"dog"}]),
    ("bike", "synonym", [{"bicycle"}]),
    ("my photos of cat", "phrase", [{"cat"}]),
    ("photos of dogs", "phrase", [{"dog"}]),
    ("show me pictures of birds", "phrase", [{"bird"}]),
    ("a cup of coffee", "phrase", [{"coffee"}]),
    ("people on the beach", "phrase", [{"person", "beach"}]),
    ("some fresh fruit", "phrase", [{"fruit"}]),
    ("oranges and lemons", "and", [{"orange", "lemon"}]),
    ("dog with a bicycle", "and", [{"dog", "bicycle"}]),
    ("giraffe and zebra", "and", [{"giraffe", "zebra"}]),
    ("person and horse", "and", [{"person", "horse"}]),
    ("dog horse", "and", [{"dog", "horse"}]),
    ("cat or dog", "or", [{"cat"}, {"dog"}]),
    ("cta", "misspell", [{"cat"}]),
    ("dgo", "misspell", [{"dog"}]),
    ("brid", "misspell", [{"bird"}]),
    ("hors", "misspell", [{"horse"}]),
    ("giraf", "misspell", [{"giraffe"}]),
    ("squirel", "misspell", [{"squirrel"}]),
    ("butterfy", "misspell", [{"butterfly"}]),
    ("bycicle", "misspell", [{"bicycle"}]),
    ("my photos of dgos", "misspell", [{"dog"}]),
    ("elephant", "absent", []),
    ("pizza", "absent", []),
    ("sheep", "absent", []),
    ("snow", "absent", []),
    ("airplane", "absent", []),
    ("a dog on the beach", "absent", []),
    ("cat and bicycle", "absent", []),
]


def build_library(folder: Path, birds: int, shapes: int, seed: int = 0) -> dict[str, set[str]]:
    """Copy the photos into `folder`; returns relative path -> tags."""
    tags: dict[str, set[str]] = {}
    photos = SHARED / "photos"
    for name, what in PHOTO_TAGS.items():
        source = photos / name if (photos / name).is_file() else photos / "dev-only" / name
        if source.is_file():
            (folder / "photos").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / "photos" / name)
            tags[f"photos/{name}"] = set(what)
    rng = np.random.default_rng(seed)
    all_birds = sorted((SHARED / "datasets" / "birds").rglob("*.jpg"))
    for source in [
        all_birds[i] for i in sorted(rng.choice(len(all_birds), min(birds, len(all_birds)), False))
    ]:
        target = folder / "birds" / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        tags[target.relative_to(folder).as_posix()] = set(BIRD_TAGS)
    from PIL import Image, ImageDraw

    (folder / "shapes").mkdir(parents=True, exist_ok=True)
    for i in range(shapes):
        img = Image.new("RGB", (320, 240), tuple(int(c) for c in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            x, y = int(rng.integers(0, 280)), int(rng.integers(0, 200))
            w, h = int(rng.integers(20, 160)), int(rng.integers(20, 120))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
        img.save(folder / "shapes" / f"shape_{i:03d}.png")
        tags[f"shapes/shape_{i:03d}.png"] = set()
    return tags


def cpu_line() -> str:
    """The CPU model and the flags that change how networks run (pixelsift's own reading of them)."""
    from pixelsift.runtime.device import detect_cpu_features

    model = "unknown CPU"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(
            (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), model
        )
    except OSError:
        pass
    return f"CPU: {model}, {os.cpu_count()} cores, flags: {detect_cpu_features().describe()}"


def relevant(tags: dict[str, set[str]], want: list[set[str]]) -> set[str]:
    return {path for path, have in tags.items() if any(group <= have for group in want)}


# ---------------------------------------------------------------------------------------- the worker
def worker(
    library: Path,
    db: Path,
    out: Path,
    calibrate: bool,
    min_score: float | None = None,
    model: str | None = None,
) -> None:
    """Index `library` (with classifier `model`, default the library's default) and answer every query
    with the pixelsift on sys.path (in its own process)."""
    from pixelsift.library import PhotoIndex

    index = PhotoIndex(db)
    index.update(library, model=model)
    answers = {}
    for query, _, _ in QUERIES:
        try:
            results = index.search(query, n=20, min_score=min_score)
            answers[query] = {"ranked": [[r.relative_path, float(r.score)] for r in results], "error": None}
        except Exception as exc:  # the baseline fails on some queries: that is a result too
            answers[query] = {"ranked": [], "error": f"{type(exc).__name__}: {exc}"}
    payload: dict = {"answers": answers}
    if calibrate:
        payload["calibration"] = calibration_rows(index)
    out.write_text(json.dumps(payload))


def calibration_rows(index: object) -> list[list]:
    """Per photo and word query concept: [path, concept, classifier mass, best detection score]."""
    from pixelsift.library.fusion import Fusion

    searcher = index.searcher()  # type: ignore[attr-defined]
    probs = index._probabilities()  # type: ignore[attr-defined]
    fusion = Fusion(searcher.vocab, probs)
    paths = dict(index.store.conn.execute("SELECT id, path FROM photos"))  # type: ignore[attr-defined]
    rows = []
    concepts = sorted({q for q, kind, _ in QUERIES if kind in ("word", "absent") and " " not in q})
    for concept in concepts:
        term = searcher._term(concept)
        if term is None:
            continue
        mass = fusion.classifier_mass(fusion.class_weights(term))
        best: dict[int, float] = {}
        for hit in index.store.matching_detections(term.detection_names):  # type: ignore[attr-defined]
            best[hit.photo_id] = max(best.get(hit.photo_id, 0.0), hit.score)
        for photo_id, m in zip(probs.ids.tolist(), mass.tolist(), strict=True):
            rows.append([paths[photo_id], concept, m, best.get(photo_id, 0.0)])
    return rows


# ---------------------------------------------------------------------------------------- the driver
def run_version(
    src: Path,
    library: Path,
    work: Path,
    name: str,
    calibrate: bool,
    min_score: float | None = None,
    model: str | None = None,
) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), PIXELSIFT_HOME=str(work / f"home-{name}"))
    out = work / f"{name}.json"
    command = [sys.executable, __file__, "--worker", str(library), str(work / f"{name}.db"), str(out)]
    if calibrate:
        command.append("--calibrate")
    if min_score is not None:
        command += ["--min-score", str(min_score)]
    if model is not None:
        command += ["--model", model]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def metrics(ranked: list[str], rel: set[str]) -> dict[str, float]:
    if not rel:
        return {"p5": float("nan"), "r10": float("nan"), "ap": float("nan"), "listed": float(len(ranked))}
    k = min(5, len(rel))
    p5 = sum(p in rel for p in ranked[:k]) / k
    r10 = sum(p in rel for p in ranked[:10]) / len(rel)
    hits, total = 0, 0.0
    for i, p in enumerate(ranked[:20], 1):
        if p in rel:
            hits += 1
            total += hits / i
    ap = total / min(len(rel), 20)
    wrong = sum(p not in rel for p in ranked[:10])
    return {"p5": p5, "r10": r10, "ap": ap, "listed": float(wrong)}


def fit_platt(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    z = np.log(np.clip(x, 1e-6, 1 - 1e-6) / (1 - np.clip(x, 1e-6, 1 - 1e-6)))
    model = LogisticRegression(C=100.0).fit(z[:, None], y)
    return float(model.coef_[0][0]), float(model.intercept_[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=3, metavar=("LIBRARY", "DB", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--baseline", default="ee61d74", help="commit to compare with (default: ee61d74)")
    parser.add_argument("--birds", type=int, default=60, help="bird photos from the birds set (default 60)")
    parser.add_argument("--shapes", type=int, default=40, help="generated shape images (default 40)")
    parser.add_argument("--calibrate", action="store_true", help="print the Platt fits on this library")
    parser.add_argument("--show", action="store_true", help="print each query's results (+ = relevant)")
    parser.add_argument("--min-score", type=float, default=None, help="the minimum score to search with")
    parser.add_argument(
        "--models",
        metavar="NAME,NAME",
        help="compare these index classifiers with this checkout (e.g. "
        "efficientnet_lite0,efficientnet_lite2) instead of this checkout with --baseline",
    )
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        library, db, out = (Path(p) for p in args.worker)
        worker(library, db, out, args.calibrate, args.min_score, args.model)
        return
    if not (SHARED / "photos").is_dir():
        sys.exit(f"bench_search needs {SHARED / 'photos'} (the shared sample photos)")
    print(cpu_line())
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        work = Path(tmp)
        library = work / "library"
        tags = build_library(library, args.birds, args.shapes)
        print(
            f"library: {len(tags)} photos ({sum(p.startswith('birds/') for p in tags)} birds, "
            f"{sum(p.startswith('shapes/') for p in tags)} generated shapes); {len(QUERIES)} queries"
        )
        if args.models:
            versions = {
                f"-m {name}": run_version(REPO / "src", library, work, name, False, args.min_score, name)
                for name in args.models.split(",")
            }
            report(versions, tags)
            return
        baseline_src = work / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline_src), args.baseline],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            versions = {
                f"before ({args.baseline})": run_version(
                    baseline_src / "src", library, work, "before", False
                ),
                "after (this checkout)": run_version(
                    REPO / "src", library, work, "after", args.calibrate, args.min_score
                ),
            }
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline_src)], check=False
            )
        report(versions, tags)
        if args.show:
            show(versions["after (this checkout)"], tags)
        if args.calibrate:
            calibrate(versions["after (this checkout)"]["calibration"], tags)


def report(versions: dict[str, dict], tags: dict[str, set[str]]) -> None:
    names = list(versions)
    print(
        f"\n{'query':28s} {'kind':8s} {'R':>3s}  "
        + "  ".join(f"{'P@5':>5s} {'R@10':>5s} {'AP':>5s} {'wrong':>5s}" for _ in names)
    )
    print(" " * 43 + "  ".join(f"{n[:26]:26s}" for n in names))
    table: dict[str, list[tuple[str, dict]]] = {n: [] for n in names}
    for query, kind, want in QUERIES:
        rel = relevant(tags, want)
        cells = []
        for name in names:
            answer = versions[name]["answers"][query]
            m = metrics([p for p, _ in answer["ranked"]], rel)
            table[name].append((kind, m))
            mark = "!" if answer["error"] else " "
            cells.append(
                f"{m['p5']:5.2f} {m['r10']:5.2f} {m['ap']:5.2f} {int(m['listed']):5d}{mark}".replace(
                    "nan", "  -"
                )
            )
        print(f"{query[:28]:28s} {kind:8s} {len(rel):3d}  " + " ".join(cells))
    print("\nmeans (P@5, R@10, mAP; absent: photos listed per query, target 0; ! = the query raised)")
    for name in names:
        rows = table[name]
        for group, kinds in (
            ("word", {"word", "plural", "synonym"}),
            ("phrase+and", {"phrase", "and", "or"}),
            ("misspell", {"misspell"}),
        ):
            ms = [m for k, m in rows if k in kinds]
            print(
                f"  {name:28s} {group:10s} P@5 {np.mean([m['p5'] for m in ms]):.3f}  "
                f"R@10 {np.mean([m['r10'] for m in ms]):.3f}  mAP {np.mean([m['ap'] for m in ms]):.3f}"
            )
        absent = [m["listed"] for k, m in rows if k == "absent"]
        print(f"  {name:28s} {'absent':10s} listed {sum(absent):.0f} photos over {len(absent)} queries")
        wrong = sum(m["listed"] for k, m in rows if k != "absent")
        print(f"  {name:28s} {'wrong':10s} {wrong:.0f} photos in the top 10s that do not show the concept")
        allm = [m for k, m in rows if k != "absent"]
        print(
            f"  {name:28s} {'all':10s} P@5 {np.mean([m['p5'] for m in allm]):.3f}  "
            f"R@10 {np.mean([m['r10'] for m in allm]):.3f}  mAP {np.mean([m['ap'] for m in allm]):.3f}"
        )


def show(version: dict, tags: dict[str, set[str]]) -> None:
    for query, _, want in QUERIES:
        rel = relevant(tags, want)
        ranked = version["answers"][query]["ranked"][:8]
        cells = [f"{'+' if p in rel else '-'}{Path(p).name[:18]} {s:.2f}" for p, s in ranked]
        print(f"{query[:24]:24s} " + ", ".join(cells))


def calibrate(rows: list[list], tags: dict[str, set[str]]) -> None:
    mass = np.array([r[2] for r in rows])
    det = np.array([r[3] for r in rows])
    y = np.array([r[1] in tags.get(r[0], set()) for r in rows], int)
    a, b = fit_platt(mass, y)
    print(f"\ncalibration on {len(rows)} (photo, concept) pairs, {y.sum()} relevant:")
    print(f"  classifier mass:  relevant = sigmoid({a:.3f} * logit(mass) + {b:.3f})")
    has = det > 0
    if has.sum() > 5 and 0 < y[has].sum() < has.sum():
        a, b = fit_platt(det[has], y[has])
        fit = f"sigmoid({a:.3f} * logit(score) + {b:.3f})"
        print(f"  detection score:  relevant = {fit}  ({has.sum()} with a box)")


if __name__ == "__main__":
    main()
