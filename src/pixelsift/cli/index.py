"""`pixelsift index`: build or update the searchable index of a photo folder."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pixelsift.cli.common import add_agnostic_nms_option, add_runner_options, run_options
from pixelsift.cli.output import to_json
from pixelsift.errors import UsageError

EXAMPLES = """examples:
  pixelsift index ~/Photos                       index (or update) a folder; later runs only do what changed
  pixelsift index ~/Photos --labeler birds.model  also label every photo with a model from `pixelsift train`
  pixelsift index ~/Photos --exclude 'Screenshots/*' --detector none
  pixelsift index ~/Photos --segmenter maskrcnn_resnet50_fpn_v2   objects with their own areas
  pixelsift index ~/Photos --ocr                  also read the text in photos: search it with --text
  pixelsift index ~/Photos --db ~/photo-index.db  keep the index in a file of your choice
  pixelsift index ~/Photos --stats                what the index holds (no indexing)
  pixelsift index ~/Photos --watch                keep the index current as photos arrive (Ctrl-C stops)
  pixelsift index --repair --db ~/photo-index.db  a damaged index: kept aside, built again, same settings
  pixelsift index /mnt/new-place --db ~/photo-index.db  the library's folder moved: the index follows it

The index is one SQLite file, by default in $PIXELSIFT_HOME/libraries/ (pixelsift never writes into the
photo folder). Moved or renamed photos keep their entry; deleted ones are dropped; photos that cannot be
read are listed once and not retried until they change. Interrupted runs resume where they stopped.
A symbolic link out of the folder is reported, not followed (--follow-links follows it).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index",
        help="index a folder of photos for search (incremental)",
        description="Index a folder of photos (recursively) so `pixelsift search` can find them by content.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", metavar="PHOTOS_DIR", nargs="?", help="the photo folder (searched recursively)")
    p.add_argument(
        "--stats",
        action="store_true",
        help="print what the index holds (photos, models, photos without detection) and index nothing",
    )
    p.add_argument(
        "--db", default=None, metavar="FILE", help="index file (default: one per folder in PIXELSIFT_HOME)"
    )
    p.add_argument(
        "--labeler",
        action="append",
        default=[],
        metavar="FILE",
        help="a model saved by `pixelsift train`; its labels become searchable (repeatable, remembered)",
    )
    finders = p.add_mutually_exclusive_group()
    finders.add_argument(
        "--detector",
        default=None,
        metavar="MODEL|none",
        help="object detector for COCO objects (default: pixelsift's default detector when available)",
    )
    finders.add_argument(
        "--segmenter",
        default=None,
        metavar="MODEL",
        help="an instance segmenter as the detector (`pixelsift models --task segment`): each object's "
        "own area is stored too, so 'close-up of a dog' puts the photos a dog fills first (remembered)",
    )
    add_agnostic_nms_option(p)
    p.add_argument(
        "--text-image",
        default=None,
        metavar="MODEL|none",
        help="text-image model for free-text search (default: clip_vit_b32 when installed with weights)",
    )
    p.add_argument(
        "--ocr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read the text in photos (signs, receipts, screenshots) so `search --text` finds it; "
        "remembered (--no-ocr stops reading; the text read so far stays). Needs pixelsift[ocr]",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="keep watching the folder: index again after photos arrive, move or are deleted (Ctrl-C stops)",
    )
    p.add_argument(
        "--debounce",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="--watch: quiet time after the last change before indexing again (default: 2)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip matching files or folders (repeatable)",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="keep a damaged index aside (DB.damaged-TIME) and build it again with the same settings",
    )
    p.add_argument(
        "--follow-links",
        action="store_true",
        help="also index what symbolic links out of the folder lead to (default: reported, not followed)",
    )
    p.add_argument(
        "--from-batch",
        action="append",
        default=[],
        metavar="OUT_DIR",
        help="use the results of `pixelsift batch embed` / `detect` for the photos they ran (repeatable)",
    )
    p.add_argument("-f", "--format", default="table", choices=("table", "json"), help="summary format")
    add_runner_options(p, None)
    p.add_argument(
        "-m", "--model", default=None, help="classifier (default: efficientnet_lite0; fixed per index)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    from pixelsift.library import PhotoIndex
    from pixelsift.library.photo_index import default_db_path

    if args.stats:
        return print_stats(args)
    if args.repair:
        from pixelsift.library.photo_index import repair_index

        if args.db is None and args.folder is None:
            raise UsageError("give the index to repair: pixelsift index --repair --db FILE (or PHOTOS_DIR)")
        aside, settings = repair_index(args.db or default_db_path(args.folder))
        print(f"pixelsift: kept the damaged index as {aside}; indexing again", file=sys.stderr)
        args.folder = args.folder or settings.root
        if args.folder is None:
            raise UsageError(
                "the damaged index did not say which folder it held; give it: "
                f"pixelsift index PHOTOS_DIR --db {args.db}"
            )
    if args.folder is None:
        raise UsageError("give the photo folder to index: pixelsift index PHOTOS_DIR (or --stats with --db)")
    if args.segmenter is not None:
        from pixelsift.models.records import SegmenterSpec
        from pixelsift.models.registry import get_spec_of

        args.detector = get_spec_of(args.segmenter, SegmenterSpec, needed_for="--segmenter").name
    db = args.db or default_db_path(args.folder)
    options = dict(
        model=args.model,
        detector=args.detector,
        labelers=args.labeler,
        text_image=args.text_image,
        exclude=args.exclude,
        follow_links=args.follow_links,
        agnostic_nms=args.agnostic_nms,
        from_batch=args.from_batch,
        ocr=args.ocr,
        progress=args.progress,
        run_options=run_options(args),
    )
    if args.watch:
        return _watch(db, args, options)
    with PhotoIndex(db) as index:
        report = index.update(args.folder, **options)
    if args.format == "json":
        print(to_json({**report.to_dict(), "db": str(db)}))
    else:
        print(report.summary())
        print(f"index: {db}")
    if report.failed:  # each was reported when it was met
        count = len(report.failed)
        print(
            f"pixelsift: {count} photo{'s' * (count != 1)} could not be read (listed above)", file=sys.stderr
        )
    return 1 if report.failed else 0


def _watch(db: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    """`index --watch`: update now and after every burst of changes, one line each, until Ctrl-C."""
    import signal
    import threading
    import time

    from pixelsift.library import PhotoIndex

    if args.debounce <= 0:
        raise UsageError(f"--debounce must be above 0 seconds, not {args.debounce}")

    def reported(report: Any) -> None:
        if args.format == "json":
            print(to_json({**report.to_dict(), "db": str(db)}, indent=None), flush=True)
        else:
            print(f"{time.strftime('%H:%M:%S')} {report.summary()}", flush=True)

    stop = threading.Event()

    def stop_watching(signum: int, frame: Any) -> None:
        # Ctrl-C (or a service manager's SIGTERM) ends the watch once the update under way is written;
        # a second Ctrl-C interrupts at once
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, stop_watching) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with PhotoIndex(db) as index:
            print(f"pixelsift: watching {args.folder} (index: {db}); Ctrl-C stops", file=sys.stderr)
            how = index.watch(args.folder, stop=stop, debounce=args.debounce, on_report=reported, **options)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.quiet:
        print(f"pixelsift: stopped watching {args.folder} (changes were seen by {how})", file=sys.stderr)
    return 0


def _text_stats(stats: dict[str, Any]) -> str:
    if not stats["ocr"] and not stats["text_read"]:
        return "not read (index with --ocr to search it)"
    read = f"read in {stats['text_read']} photos, {stats['text_lines']} lines"
    return read if stats["ocr"] else read + " (no longer read: --no-ocr)"


def _scene_stats(stats: dict[str, Any]) -> str:
    left = stats["without_scene"]
    if not left:
        return "every photo (sky, grass, tree, road)"
    return f"{left} photo{'s' * (left != 1)} not looked at yet (the next `pixelsift index` does them)"


def print_stats(args: argparse.Namespace) -> int:
    """`index --stats`: the index of --db, of PHOTOS_DIR, or the one `search` would use."""
    from pixelsift.cli.search import open_index
    from pixelsift.library.photo_index import default_db_path

    db = args.db or (str(default_db_path(args.folder)) if args.folder else None)
    with open_index(db) as index:
        stats = index.stats()
    if args.format == "json":
        print(to_json(stats))
        return 0
    missing = stats["without_detection"]
    rows = [
        ("index", stats["db"]),
        ("photos", f"{stats['photos']} ({stats['failed']} could not be read)"),
        ("folder", stats["root"] or "-"),
        ("classifier", stats["model"] or "-"),
        ("detector", stats["detector"] or "auto"),
        ("without detection", f"{missing} photo{'s' * (missing != 1)}"),
        ("text-image model", stats["text_image_model"] or "none"),
        ("text in photos", _text_stats(stats)),
        ("scene regions", _scene_stats(stats)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if missing and stats["detector"] != "none":
        print(
            f"note: {missing} photo{'s have' if missing != 1 else ' has'} not been seen by an object "
            "detector, so searches for objects and people rest on the classifier alone there; "
            "`pixelsift doctor` says what detection needs, then run `pixelsift index` again",
            file=sys.stderr,
        )
    return 0
