"""Search quality on a labelled library: precision@10, recall@50 and mean average precision per query
and per family of queries, for this checkout and a baseline commit, in one run.

    python benchmarks/bench_search.py [--baseline 4976b8c] [--work DIR] [--show] [--calibrate]
    python benchmarks/bench_search.py --models efficientnet_lite0,efficientnet_lite2   (index classifiers)

The library is built from `../shared/datasets/searchlib` (591 real scene photos with their objects and
scene regions: grass, road, water, sky, buildings; left out with --no-searchlib), `../shared/photos` (the
committed and the dev-only photos, each tagged by hand below with what it shows), photos of
`../shared/datasets/birds` (tagged bird and animal) and generated images of coloured shapes (tagged with
nothing: they must match no query). This checkout indexes it once with its default classifier and
detector; the baseline (from a `git worktree` of `--baseline`) and this checkout then search the same
index, each in its own process, so the difference is search alone. This checkout answers twice: ranked
(the default) and with `--all` (the strict AND). `--work DIR` keeps the library and the index: a
second run only searches.

Queries come in families (`QUERIES`): words, hierarchy words, phrases, synonyms, two and three concepts
at once, words that name no class (scenes, places), misspellings, absent concepts (the target: nothing
listed) and absent pairs (no photo shows both: the target is no photo listed as showing both).
- P@10 = relevant photos among the first min(10, R) results / min(10, R), R = relevant photos;
- recall@50 = relevant photos among the first 50 / R; AP = average precision over the first 50.
`--calibrate` also prints the logistic fit of relevance on the classifier's concept mass and on the
best detection score (the Platt coefficients of `pixelsift.library.fusion.Calibration`), and P@10 and
AP of the several-concept queries for each `context_floor`.
"""

from __future__ import annotations

import argparse
import csv
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
BASELINE = "4976b8c"  # the last commit before search ranked several concepts

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
    "dog.jpg": {"dog", "bicycle", "car", "animal", "vehicle"},
    "eagle.jpg": {"bird", "animal"},
    "fruits.jpg": {"fruit", "food", "orange", "lemon"},
    "giraffe.jpg": {"giraffe", "zebra", "animal"},
    "horses.jpg": {"horse", "animal"},
    "kite.jpg": {"kite", "person", "beach", "water"},
    "lake.jpg": {"water"},
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

# searchlib's classes (../shared/datasets/searchlib/labels.csv) -> the tags of the queries below; people
# are labelled there by face and body
SEARCHLIB_TAGS: dict[str, set[str]] = {
    "building": {"building"},
    "grass": {"grass"},
    "tree": {"tree", "plant"},
    "cow": {"cow", "animal"},
    "horse": {"horse", "animal"},
    "sheep": {"sheep", "animal"},
    "sky": {"sky"},
    "mountain": {"mountain"},
    "aeroplane": {"airplane", "aircraft", "vehicle"},
    "water": {"water"},
    "face": {"person"},
    "body": {"person"},
    "car": {"car", "vehicle"},
    "bicycle": {"bicycle", "vehicle"},
    "flower": {"flower", "plant"},
    "sign": {"sign"},
    "bird": {"bird", "animal"},
    "book": {"book"},
    "chair": {"chair", "furniture"},
    "road": {"road"},
    "cat": {"cat", "animal"},
    "dog": {"dog", "animal"},
    "boat": {"boat", "vehicle"},
}

# (query, family, what is relevant: alternatives (OR) of tag sets (AND)). Families: word, hierarchy,
# phrase, synonym, two and three (concepts at once), noclass (words that name no class: scenes and
# places), misspell, absent (nothing in the library shows it: the target is an empty result), and
# absent-pair (no photo shows both: the target is nothing listed as showing both).
QUERIES: list[tuple[str, str, list[set[str]]]] = [
    *[
        (w, "word", [{w}])
        for w in (
            "cat", "dog", "bird", "horse", "cow", "sheep", "car", "bicycle", "boat", "airplane", "chair",
            "book", "flower", "tree", "building", "person", "giraffe", "butterfly", "squirrel", "kite",
            "monkey", "orange", "sign", "mountain",
        )
    ],
    *[(w, "hierarchy", [{w}]) for w in ("animal", "vehicle", "furniture", "plant", "fruit", "aircraft")],
    ("insect", "hierarchy", [{"butterfly"}]),
    ("food", "hierarchy", [{"food"}]),
    ("my photos of cats", "phrase", [{"cat"}]),
    ("show me all the birds", "phrase", [{"bird"}]),
    ("pictures of sheep", "phrase", [{"sheep"}]),
    ("photos of my dog", "phrase", [{"dog"}]),
    ("a cup of coffee", "phrase", [{"coffee"}]),
    ("some fresh fruit", "phrase", [{"fruit"}]),
    ("a photo of a boat", "phrase", [{"boat"}]),
    ("all my pictures of people", "phrase", [{"person"}]),
    ("kitty", "synonym", [{"cat"}]),
    ("puppy", "synonym", [{"dog"}]),
    ("bike", "synonym", [{"bicycle"}]),
    ("automobile", "synonym", [{"car"}]),
    ("aeroplane", "synonym", [{"airplane"}]),
    ("cattle", "synonym", [{"cow"}]),
    ("kitten", "synonym", [{"cat"}]),
    ("blossom", "synonym", [{"flower"}]),
    ("human", "synonym", [{"person"}]),
    ("people", "synonym", [{"person"}]),
    ("cows on grass", "two", [{"cow", "grass"}]),
    ("a car on the road", "two", [{"car", "road"}]),
    ("a boat on the water", "two", [{"boat", "water"}]),
    ("a person and a dog", "two", [{"person", "dog"}]),
    ("sheep on the grass", "two", [{"sheep", "grass"}]),
    ("an airplane in the sky", "two", [{"airplane", "sky"}]),
    ("a bicycle on the road", "two", [{"bicycle", "road"}]),
    ("a person with a book", "two", [{"person", "book"}]),
    ("a bird on the grass", "two", [{"bird", "grass"}]),
    ("cars and buildings", "two", [{"car", "building"}]),
    ("oranges and lemons", "two", [{"orange", "lemon"}]),
    ("dog with a bicycle", "two", [{"dog", "bicycle"}]),
    ("giraffe and zebra", "two", [{"giraffe", "zebra"}]),
    ("person and horse", "two", [{"person", "horse"}]),
    ("people near the water", "two", [{"person", "water"}]),
    ("a bird by the water", "two", [{"bird", "water"}]),
    ("a chair on the grass", "two", [{"chair", "grass"}]),
    ("a car on the road near buildings", "three", [{"car", "road", "building"}]),
    ("a boat on the water with mountains", "three", [{"boat", "water", "mountain"}]),
    ("cows on grass under trees", "three", [{"cow", "grass", "tree"}]),
    ("a bicycle on the road by a building", "three", [{"bicycle", "road", "building"}]),
    ("an airplane on the grass under the sky", "three", [{"airplane", "grass", "sky"}]),
    ("a person on the grass under a tree", "three", [{"person", "grass", "tree"}]),
    ("grass", "noclass", [{"grass"}]),
    ("sky", "noclass", [{"sky"}]),
    ("road", "noclass", [{"road"}]),
    ("water", "noclass", [{"water"}]),
    ("street", "noclass", [{"road"}]),
    ("a lake", "noclass", [{"water"}]),
    ("the sea", "noclass", [{"water"}]),
    ("a lawn", "noclass", [{"grass"}]),
    ("cta", "misspell", [{"cat"}]),
    ("dgo", "misspell", [{"dog"}]),
    ("brid", "misspell", [{"bird"}]),
    ("hors", "misspell", [{"horse"}]),
    ("giraf", "misspell", [{"giraffe"}]),
    ("squirel", "misspell", [{"squirrel"}]),
    ("butterfy", "misspell", [{"butterfly"}]),
    ("bycicle", "misspell", [{"bicycle"}]),
    ("my photos of dgos", "misspell", [{"dog"}]),
    ("shep", "misspell", [{"sheep"}]),
    ("airplain", "misspell", [{"airplane"}]),
    ("flowr", "misspell", [{"flower"}]),
    ("bulding", "misspell", [{"building"}]),
    ("elephant", "absent", []),
    ("pizza", "absent", []),
    ("helicopter", "absent", []),
    ("kangaroo", "absent", []),
    ("umbrella", "absent", []),
    ("guitar", "absent", []),
    ("banana", "absent", []),
    ("tiger", "absent", []),
    ("laptop", "absent", []),
    ("a cat and a dog", "absent-pair", []),
    ("a boat and a car", "absent-pair", []),
    ("a cow and a chair", "absent-pair", []),
    ("an airplane over water", "absent-pair", []),
]  # fmt: skip
ABSENT = {"absent", "absent-pair"}


def build_library(
    folder: Path, birds: int, shapes: int, searchlib: bool = True, seed: int = 0
) -> dict[str, set[str]]:
    """Copy the photos into `folder` (once: a folder that holds them already is reused); returns
    relative path -> tags."""
    tags: dict[str, set[str]] = {}
    photos = SHARED / "photos"
    for name, what in PHOTO_TAGS.items():
        source = photos / name if (photos / name).is_file() else photos / "dev-only" / name
        if source.is_file():
            copy(source, folder / "photos" / name)
            tags[f"photos/{name}"] = set(what)
    rng = np.random.default_rng(seed)
    all_birds = sorted((SHARED / "datasets" / "birds").rglob("*.jpg"))
    for source in [
        all_birds[i] for i in sorted(rng.choice(len(all_birds), min(birds, len(all_birds)), False))
    ]:
        target = folder / "birds" / source.parent.name / source.name
        copy(source, target)
        tags[target.relative_to(folder).as_posix()] = set(BIRD_TAGS)
    labels = SHARED / "datasets" / "searchlib" / "labels.csv"
    if searchlib and labels.is_file():
        with labels.open(newline="") as f:
            for row in csv.DictReader(f):
                classes = {part.split(":")[0] for part in row["objects"].split(";") if part}
                target = folder / "searchlib" / Path(row["file"]).name
                copy(labels.parent / row["file"], target)
                tags[target.relative_to(folder).as_posix()] = set().union(
                    *(SEARCHLIB_TAGS[c] for c in classes)
                )
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
        target = folder / "shapes" / f"shape_{i:03d}.png"
        if not target.exists():
            img.save(target)
        tags[f"shapes/shape_{i:03d}.png"] = set()
    return tags


def copy(source: Path, target: Path) -> None:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


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
    index_it: bool = True,
    modes: tuple[str, ...] = ("ranked",),
) -> None:
    """Index `library` (with classifier `model`, default the library's default; `index_it=False`: the
    index `db` is searched as it is) and answer every query with the pixelsift on sys.path, in its own
    process, in each of `modes`: "ranked" (the default search) and "all" (`match_all=True`)."""
    from pixelsift.library import PhotoIndex

    index = PhotoIndex(db)
    if index_it:
        index.update(library, model=model)
    payload: dict = {}
    for mode in modes:
        answers = {}
        options = {"match_all": True} if mode == "all" else {}
        for query, _, _ in QUERIES:
            try:
                results = index.search(query, n=N, min_score=min_score, **options)
                ranked = [[r.relative_path, float(r.score), list(getattr(r, "weak", []))] for r in results]
                answers[query] = {"ranked": ranked, "error": None}
            except Exception as exc:  # the baseline fails on some queries: that is a result too
                answers[query] = {"ranked": [], "error": f"{type(exc).__name__}: {exc}"}
        payload[mode] = answers
    if calibrate:
        payload["calibration"] = calibration_rows(index)
        payload["concepts"] = concept_scores(index)
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


def concept_scores(index: object) -> dict[str, dict]:
    """Per query of several concepts: its concepts' fused scores for every photo, and which one is the
    main concept (for tuning how concepts combine: `--calibrate`)."""
    from pixelsift.library.fusion import Fusion
    from pixelsift.library.search import main_concept

    searcher = index.searcher()  # type: ignore[attr-defined]
    probs = index._probabilities()  # type: ignore[attr-defined]
    fusion = Fusion(searcher.vocab, probs)
    store = index.store  # type: ignore[attr-defined]
    paths = dict(store.conn.execute("SELECT id, path FROM photos"))
    found: dict[str, dict] = {}
    for query, kind, _ in QUERIES:
        if kind not in ("two", "three", "absent-pair"):
            continue
        understood = searcher.understand(query)
        if len(understood.groups) != 1:
            continue
        group = understood.groups[0]
        rows = []
        for term in group:
            scored = fusion.score(
                term, store.matching_detections(term.detection_names), store.matching_labels(term.label_names)
            )
            rows.append(dict(zip(scored.ids.tolist(), scored.scores.tolist(), strict=True)))
        ids = sorted(set().union(*rows))
        found[query] = {
            "paths": [paths[i] for i in ids],
            "scores": [[row.get(i, 0.0) for i in ids] for row in rows],
            "main": main_concept(group),
        }
    return found


# ---------------------------------------------------------------------------------------- the driver
N = 50  # results asked for per query: recall@50, AP over the first 50


def run_version(
    src: Path,
    library: Path,
    work: Path,
    name: str,
    calibrate: bool,
    min_score: float | None = None,
    model: str | None = None,
    db: Path | None = None,
    modes: tuple[str, ...] = ("ranked",),
) -> dict:
    """One version's answers. `db`: search this index (a copy of it) instead of indexing anew."""
    env = dict(os.environ, PYTHONPATH=str(src), PIXELSIFT_HOME=str(work / f"home-{name}"))
    out = work / f"{name}.json"
    own = work / f"{name}.db"
    command = [sys.executable, __file__, "--worker", str(library), str(own), str(out)]
    if db is not None:
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                shutil.copyfile(f"{db}{suffix}", f"{own}{suffix}")
        command.append("--searched")
    if calibrate:
        command.append("--calibrate")
    if min_score is not None:
        command += ["--min-score", str(min_score)]
    if model is not None:
        command += ["--model", model]
    command += ["--modes", ",".join(modes)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def metrics(ranked: list[list], rel: set[str], absent: bool = False) -> dict[str, float]:
    """P@10 (relevant among the first min(10, R) / min(10, R)), recall@50, AP over the first 50; for an
    absent concept, `listed`: the photos listed (for an absent pair: those listed as showing both)."""
    paths = [p for p, *_ in ranked]
    if absent:
        shown = [r for r in ranked if not (r[2] if len(r) > 2 else [])]
        nan = float("nan")
        return {"p10": nan, "r50": nan, "ap": nan, "listed": float(len(shown)), "wrong": 0.0}
    if not rel:
        return {"p10": float("nan"), "r50": float("nan"), "ap": float("nan"), "listed": 0.0, "wrong": 0.0}
    k = min(10, len(rel))
    p10 = sum(p in rel for p in paths[:k]) / k
    r50 = sum(p in rel for p in paths[:N]) / len(rel)
    hits, total = 0, 0.0
    for i, p in enumerate(paths[:N], 1):
        if p in rel:
            hits += 1
            total += hits / i
    ap = total / min(len(rel), N)
    wrong = sum(p not in rel for p in paths[:10])
    return {"p10": p10, "r50": r50, "ap": ap, "listed": 0.0, "wrong": float(wrong)}


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
    parser.add_argument("--searched", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--modes", default="ranked", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", default=BASELINE, help=f"commit to compare with (default: {BASELINE})")
    parser.add_argument("--birds", type=int, default=60, help="bird photos from the birds set (default 60)")
    parser.add_argument("--shapes", type=int, default=40, help="generated shape images (default 40)")
    parser.add_argument(
        "--no-searchlib", action="store_true", help="leave out ../shared/datasets/searchlib (591 photos)"
    )
    parser.add_argument(
        "--work", type=Path, help="keep the library and its index in this folder: a second run only searches"
    )
    parser.add_argument("--calibrate", action="store_true", help="print the fits of the fusion's constants")
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
        modes = tuple(m for m in args.modes.split(",") if m)
        worker(library, db, out, args.calibrate, args.min_score, args.model, not args.searched, modes)
        return
    if not (SHARED / "photos").is_dir():
        sys.exit(f"bench_search needs {SHARED / 'photos'} (the shared sample photos)")
    sys.path.insert(0, str(REPO / "src"))  # this checkout's pixelsift, whatever is installed
    print(cpu_line())
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        work = Path(tmp)
        keep = args.work or work
        keep.mkdir(parents=True, exist_ok=True)
        library = keep / "library"
        tags = build_library(library, args.birds, args.shapes, not args.no_searchlib)
        print(
            f"library: {len(tags)} photos ({sum(p.startswith('searchlib/') for p in tags)} searchlib, "
            f"{sum(p.startswith('birds/') for p in tags)} birds, "
            f"{sum(p.startswith('shapes/') for p in tags)} generated shapes, "
            f"{sum(p.startswith('photos/') for p in tags)} sample photos); {len(QUERIES)} queries"
        )
        if args.models:
            versions = {
                f"-m {name}": run_version(REPO / "src", library, work, name, False, args.min_score, name)[
                    "ranked"
                ]
                for name in args.models.split(",")
            }
            report(versions, tags)
            return
        # one index, built by this checkout, searched by both versions: the difference is search alone
        index_db = keep / "index.db"
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PIXELSIFT_HOME=str(keep / "home"))
        subprocess.run(
            [sys.executable, __file__, "--worker", str(library), str(index_db), str(work / "build.json"),
             "--modes", ""],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        baseline_src = work / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline_src), args.baseline],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            try:
                before = run_version(baseline_src / "src", library, work, "before", False, db=index_db)
            except subprocess.CalledProcessError:  # e.g. an index of a schema the baseline does not know
                print(
                    f"note: {args.baseline} cannot read this checkout's index (a newer schema); it searches "
                    "an index it builds itself, so its column includes its own indexing"
                )
                for stale in work.glob("before.db*"):
                    stale.unlink()
                before = run_version(baseline_src / "src", library, work, "before", False)
            after = run_version(
                REPO / "src", library, work, "after", args.calibrate, args.min_score, db=index_db,
                modes=("ranked", "all"),
            )  # fmt: skip
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline_src)], check=False
            )
        versions = {
            f"before ({args.baseline})": before["ranked"],
            "after (this checkout)": after["ranked"],
            "after, --all": after["all"],
        }
        report(versions, tags)
        if args.show:
            show(after["ranked"], tags)
        if args.calibrate:
            calibrate(after["calibration"], tags)
            tune_floor(after["concepts"], tags, args.min_score)


FAMILIES = ("word", "hierarchy", "phrase", "synonym", "two", "three", "noclass", "misspell")


def report(versions: dict[str, dict], tags: dict[str, set[str]]) -> None:
    names = list(versions)
    print(
        f"\n{'query':36s} {'family':11s} {'R':>4s}  "
        + "  ".join(f"{'P@10':>5s} {'R@50':>5s} {'AP':>5s} {'wrong':>5s}" for _ in names)
    )
    print(" " * 55 + "  ".join(f"{n[:26]:26s}" for n in names))
    table: dict[str, list[tuple[str, dict]]] = {n: [] for n in names}
    for query, kind, want in QUERIES:
        rel = relevant(tags, want)
        cells = []
        for name in names:
            answer = versions[name][query]
            m = metrics(answer["ranked"], rel, kind in ABSENT)
            table[name].append((kind, m))
            mark = "!" if answer["error"] else " "
            count = m["listed"] if kind in ABSENT else m["wrong"]
            cells.append(
                f"{m['p10']:5.2f} {m['r50']:5.2f} {m['ap']:5.2f} {int(count):5d}{mark}".replace("nan", "  -")
            )
        print(f"{query[:36]:36s} {kind:11s} {len(rel):4d}  " + " ".join(cells))
    print(
        "\nmeans per family: P@10, recall@50, mean average precision (absent: photos listed, target 0; "
        "absent-pair: photos listed as showing both; ! = the query raised)"
    )
    print(f"  {'family':11s} {'queries':>7s}  " + "  ".join(f"{n[:26]:26s}" for n in names))
    for family in (*FAMILIES, "overall"):
        cells = []
        for name in names:
            ms = [m for k, m in table[name] if (k == family or family == "overall") and k not in ABSENT]
            ms = [m for m in ms if not np.isnan(m["p10"])]
            cells.append(
                f"{np.mean([m['p10'] for m in ms]):.2f} {np.mean([m['r50'] for m in ms]):.2f} "
                f"{np.mean([m['ap'] for m in ms]):.2f}".ljust(26)
            )
        count = sum(1 for _, k, want in QUERIES if (k == family or family == "overall") and k not in ABSENT
                    and relevant(tags, want))  # fmt: skip
        print(f"  {family:11s} {count:7d}  " + "  ".join(cells))
    for family in sorted(ABSENT):
        cells = []
        for name in names:
            listed = [m["listed"] for k, m in table[name] if k == family]
            empty = sum(1 for x in listed if x == 0)
            cells.append(f"{empty}/{len(listed)} empty, {sum(listed):.0f} listed".ljust(26))
        print(f"  {family:11s} {sum(1 for _, k, _ in QUERIES if k == family):7d}  " + "  ".join(cells))


def show(version: dict, tags: dict[str, set[str]]) -> None:
    for query, _, want in QUERIES:
        rel = relevant(tags, want)
        ranked = version[query]["ranked"][:8]
        cells = [f"{'+' if r[0] in rel else '-'}{Path(r[0]).name[:14]} {r[1]:.2f}" for r in ranked]
        print(f"{query[:28]:28s} " + ", ".join(cells))


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


def tune_floor(concepts: dict[str, dict], tags: dict[str, set[str]], min_score: float | None) -> None:
    """P@10 and AP of the queries of several concepts for each `Calibration.context_floor` (the fused
    per-concept scores come from this checkout; only the combination changes)."""
    from pixelsift.library.fusion import DEFAULT, combine

    wants = {q: (kind, want) for q, kind, want in QUERIES}
    threshold = DEFAULT.min_score if min_score is None else min_score
    print("\ncontext_floor: mean P@10 / AP of the two- and three-concept queries (ranked search)")
    for floor in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        p10s, aps = [], []
        for query, data in concepts.items():
            kind, want = wants[query]
            rel = relevant(tags, want)
            if kind in ABSENT or not rel:
                continue
            r = combine([np.array(data["scores"])], [data["main"]], threshold, floor, False)
            order = [i for i in np.lexsort((-r.score, -r.tier)).tolist() if r.tier[i] > 0][:N]
            m = metrics([[data["paths"][i]] for i in order], rel)
            p10s.append(m["p10"])
            aps.append(m["ap"])
        print(f"  {floor:.1f}: P@10 {np.mean(p10s):.3f}  AP {np.mean(aps):.3f}  ({len(p10s)} queries)")


if __name__ == "__main__":
    main()
