"""`pixelsift search` and `pixelsift similar`: find photos in an index by word, free text or example."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pixelsift.cli.common import add_format_option
from pixelsift.cli.output import csv_writer, format_score, format_table, json_writer

if TYPE_CHECKING:
    from pixelsift.library import PhotoIndex, SearchResults

EXAMPLES = """examples:
  pixelsift search cat                      photos of cats (tabby, Persian, Siamese ... and detected cats)
  pixelsift search "my photos of dogs"      filler ("my", "photos of", "show me", "a", "the") is dropped
  pixelsift search "a dog on the beach"     photos with both first, then dogs where the beach is weak
  pixelsift search "a dog on the beach" --all   only photos that show every concept
  pixelsift search "a bird on the lawn"     sky, grass, trees and roads are seen in the photo (scene: grass)
  pixelsift search "cat or dog"             either
  pixelsift search dogs --after 2021 -n 5   any dog breed, photos taken in 2021 or later
  pixelsift search food --min-score 0.1     list weaker matches too (default minimum: 0.25)
  pixelsift search "blue jay" --format json labels from your own --labeler models match by name
  pixelsift search "a dog playing in snow"  free text, when the index has a text-image model
  pixelsift search --text "RE16"            photos whose text shows RE16 (index --ocr read it): "RE16 TGK"
  pixelsift search --text "wifi pasword"    misspellings, any case, parts of words and phrases
  pixelsift search "happy birthday"         a plain query finds photos whose text says it too

Words are understood through WordNet's hierarchy of ImageNet's and COCO's classes: "bird", "fruit" and
"vehicle" find every kind of bird, fruit and vehicle; plurals and synonyms work ("cats", "puppy",
"automobile"); a word no class is named after goes through WordNet's neighbours ("beach": seashore,
lakeside), and sky, grass, trees and roads are looked for in the photo itself ("lawn", "street",
"forest" reach them). Each result says what made it match (the `matched` column / field). Several
concepts rank rather than filter: the photos that show them all come first; then photos that show the
query's main concept (its first word that names a class: "dog" in "a dog on the beach"), with the
concepts they do not clearly show named ("not clearly beach"; the `weak` field). --all lists only the
first kind.

Exit status: 0 when photos are listed, 1 when none are (the reason is printed), 2 for a bad command.
"""

SIMILAR_EXAMPLES = """examples:
  pixelsift similar ~/Photos/2021/beach.jpg -n 10   photos of the library that look like this one
  pixelsift similar new.jpg --db ~/photo-index.db   any image file works, in the library or not

Exit status: 0 when photos are listed, 1 when none are (the reason is printed), 2 for a bad command.
"""


DUPLICATES_EXAMPLES = """examples:
  pixelsift duplicates                       exact copies and near duplicates in your library
  pixelsift duplicates --threshold 0.95      only the closest near duplicates
  pixelsift duplicates --format json         groups with full paths, for a script

Exact copies share their bytes (the content hash the index keeps); near duplicates are resized,
recompressed or slightly cropped copies and bursts (classifier features with a cosine of at least
--threshold, default 0.90). Nothing is deleted or moved: the groups are listed for you to decide.

Exit status: 0 when groups are listed, 1 when there are none, 2 for a bad command.
"""


def add_db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=None,
        metavar="FILE",
        help="index file (default: the index of the folder you are in, or your only index)",
    )


def add_library_options(p: argparse.ArgumentParser) -> None:
    add_db_option(p)
    p.add_argument("-n", type=int, default=20, metavar="N", help="how many photos (default: 20)")
    add_format_option(p)
    group = p.add_argument_group("filters")
    group.add_argument("--after", metavar="DATE", help="taken on or after DATE (2021, 2021-07, 2021-07-04)")
    group.add_argument("--before", metavar="DATE", help="taken before DATE")
    group.add_argument("--camera", metavar="TEXT", help="camera make or model contains TEXT")
    group.add_argument(
        "--folder", metavar="DIR", help="only photos in this folder of the library (and below)"
    )
    group.add_argument("--label", metavar="NAME", help="only photos with this label or detected object")
    group.add_argument("--min-score", type=float, metavar="X", help="only matches scoring at least X (0-1)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="find photos in an index by content",
        description="Search an index built by `pixelsift index` for photos showing something.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", nargs="*", metavar="QUERY", help="a word, several words, or a sentence")
    p.add_argument(
        "--text",
        metavar="WORDS",
        help="search only the text read in photos (`index --ocr`): words, parts of words, phrases, "
        "any case or accents, misspellings",
    )
    add_library_options(p)
    p.add_argument(
        "--all",
        dest="match_all",
        action="store_true",
        help="only photos that show every concept of the query (default: those first, then photos that "
        "show its main concept)",
    )
    p.set_defaults(func=run_search)

    s = subparsers.add_parser(
        "similar",
        help="find photos that look like a given photo",
        description="Photos of an index nearest to PHOTO by the classifier's embedding.",
        epilog=SIMILAR_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("photo", metavar="PHOTO", help="a photo of the library, or any image file")
    add_library_options(s)
    s.set_defaults(func=run_similar)

    d = subparsers.add_parser(
        "duplicates",
        help="exact copies and near duplicates in an index",
        description="Groups of photos of an index that are copies of each other (nothing is deleted).",
        epilog=DUPLICATES_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_db_option(d)
    d.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="X",
        help="the cosine of two photos' features from which they are near duplicates (default: 0.90)",
    )
    add_format_option(d)
    d.set_defaults(func=run_duplicates)


def open_index(db: str | None, near: str | None = None) -> PhotoIndex:
    from pathlib import Path

    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.library import PhotoIndex
    from pixelsift.library.photo_index import find_db

    if db:
        return PhotoIndex(db, create=False)
    if near:  # a photo inside an indexed folder picks that folder's index
        try:
            return PhotoIndex(find_db(Path(near).expanduser().resolve().parent), create=False)
        except Exception:
            pass
    return PhotoIndex(find_db(), create=False)


def shown_path(path: str) -> str:
    """Paths under the current folder are shown relative to it (as `ls` would); JSON keeps them whole."""
    import os

    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def print_results(results: SearchResults, fmt: str) -> None:
    """JSON: one `SearchResult.to_dict` per photo, the shape Python's `to_dicts` and the web API give;
    CSV: the same fields, lists joined by "; "."""
    from pixelsift.library.search import RESULT_FIELDS  # when the command runs: `--help` stays fast

    if fmt in ("json", "jsonl"):
        with json_writer(fmt) as out:
            for r in results:
                out.write(r.to_dict())
    elif fmt == "csv":
        writer = csv_writer()
        writer.writerow(RESULT_FIELDS)
        for r in results:
            row = {**r.to_dict(), "matched": r.matched_text(), "labels": "; ".join(r.labels)}
            row["weak"] = "; ".join(r.weak)
            writer.writerow(
                [repr(v) if isinstance(v, float) else ("" if v is None else v) for v in row.values()]
            )
    elif results:
        matched = any(r.matched for r in results)
        header = ["score", "path", "matched", "labels"] if matched else ["score", "path", "labels"]
        rows = []
        for r in results:
            cells = [format_score(r.score), shown_path(r.path) + (" (missing)" if r.missing else "")]
            if matched:
                cells.append(r.matched_text())
            rows.append((*cells, ", ".join(r.labels[:4])))
        print(format_table(header, rows, right=(0,)))


def report(results: SearchResults) -> int:
    """Notes and the reason nothing was found on stderr; the exit status (0 listed, 1 none)."""
    for note in results.notes:
        print(f"pixelsift: note: {note}", file=sys.stderr)
    if results:
        return 0
    print(f"pixelsift: {results.message or 'nothing found'}", file=sys.stderr)
    return 1


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    """The result count and filters of `add_library_options`, as the library's keywords."""
    names = ("after", "before", "camera", "min_score", "folder", "label")
    return {"n": args.n, **{name: getattr(args, name) for name in names}}


def run_search(args: argparse.Namespace) -> int:
    from pixelsift.errors import UsageError

    query = " ".join(args.query)
    if args.text is not None:
        if query:
            raise UsageError("give either a query or --text WORDS, not both")
        if args.match_all:
            raise UsageError(
                "--all is for a query's concepts; --text finds photos that show every word anyway"
            )
    elif not query:
        raise UsageError("give a query (pixelsift search cat) or --text WORDS")
    with open_index(args.db) as index:
        if args.text is not None:
            results = index.search_text(args.text, **_filters(args))
        else:
            results = index.search(query, match_all=args.match_all, **_filters(args))
    print_results(results, args.format)
    return report(results)


def run_similar(args: argparse.Namespace) -> int:
    with open_index(args.db, near=args.photo) as index:
        results = index.similar(args.photo, **_filters(args))
    print_results(results, args.format)
    return report(results)


def run_duplicates(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.library.duplicates import NEAR_THRESHOLD

    threshold = NEAR_THRESHOLD if args.threshold is None else args.threshold
    with open_index(args.db) as index:
        groups = index.duplicates(threshold, progress=args.progress)
        root = str(index.root) if index.root else None
    if args.format in ("json", "jsonl"):
        with json_writer(args.format) as out:
            for group in groups:
                out.write(group.to_dict(root))
    elif args.format == "csv":
        writer = csv_writer()
        writer.writerow(["group", "kind", "similarity", "path", "id"])
        for number, group in enumerate(groups, start=1):
            for path, photo_id in zip(group.to_dict(root)["paths"], group.ids, strict=True):
                writer.writerow([number, group.kind, repr(round(group.similarity, 6)), path, photo_id])
    elif groups:
        rows = []
        for number, group in enumerate(groups, start=1):
            similarity = "same bytes" if group.kind == "exact" else f"{group.similarity:.3f}"
            head = (str(number), group.kind, similarity)
            for k, path in enumerate(group.to_dict(root)["paths"]):
                rows.append((*(head if k == 0 else ("", "", "")), shown_path(path)))
        print(format_table(["group", "kind", "similarity", "path"], rows))
    photos = sum(len(g.ids) for g in groups)
    exact = sum(g.kind == "exact" for g in groups)
    if groups:
        print(
            f"pixelsift: {len(groups)} groups ({exact} of exact copies, {len(groups) - exact} of near "
            f"duplicates at {threshold:g} or more), {photos} photos; nothing was deleted",
            file=sys.stderr,
        )
        return 0
    print(
        f"pixelsift: no duplicates (exact, or near at a similarity of {threshold:g} or more)", file=sys.stderr
    )
    return 1
