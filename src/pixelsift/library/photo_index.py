"""`PhotoIndex`: a searchable index of one folder of photos, kept in one SQLite file.

    >>> index = PhotoIndex.for_folder("~/Photos")              # doctest: +SKIP
    >>> index.update()                                          # doctest: +SKIP
    >>> index.search("cat").to_pandas()                         # doctest: +SKIP
    >>> index.similar("~/Photos/2021/beach.jpg", n=5)           # doctest: +SKIP

Where the file lives: `--db` / `db_path` when given; otherwise `$PIXELSIFT_HOME/libraries/` holds one
file per indexed folder, named after the folder, so pixelsift never writes into your photo folders.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec

import numpy as np
from typing_extensions import Unpack

from pixelsift.config import get_settings
from pixelsift.core.arrays import l2_normalize
from pixelsift.core.filelock import exclusive_lock
from pixelsift.core.hashing import sha256_file, short_digest
from pixelsift.core.progress import progress_bar
from pixelsift.errors import ImageError, LibraryFileError, UnknownModelError, UsageError
from pixelsift.imaging import scene
from pixelsift.library.duplicates import EXACT, NEAR_THRESHOLD, DuplicateGroup, near_groups
from pixelsift.library.fusion import Probabilities
from pixelsift.library.indexer import Indexer
from pixelsift.library.query import Query
from pixelsift.library.rows import CLIP, FEATURES, OK, PROBS, Filters, LibrarySettings, Term
from pixelsift.library.runs import IndexOptions, IndexReport
from pixelsift.library.schema import damaged_index_error, unwritable_reason
from pixelsift.library.search import Searcher, SearchResults
from pixelsift.library.sources import Source
from pixelsift.library.store import LibraryStore
from pixelsift.library.vectors import VectorCache
from pixelsift.library.watch import DEBOUNCE_SECONDS, POLL_SECONDS, watch_folder
from pixelsift.models.registry import get_model_spec
from pixelsift.runtime.options import RunKwargs, RunOptions
from pixelsift.runtime.text_image import load_text_image_model

PathLike = str | os.PathLike[str]
P = ParamSpec("P")
log = logging.getLogger("pixelsift")


def libraries_dir() -> Path:
    return get_settings().home / "libraries"


def default_db_path(folder: PathLike) -> Path:
    """The index file pixelsift uses for `folder` when no --db is given (one per folder, by its path)."""
    root = Path(folder).expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-") or "photos"
    digest = short_digest(str(root), 12)
    return libraries_dir() / f"{slug}-{digest}.db"


def known_libraries() -> dict[Path, Path]:
    """index file -> library root, for every index in $PIXELSIFT_HOME/libraries."""
    found: dict[Path, Path] = {}
    for db in sorted(libraries_dir().glob("*.db")):
        try:
            store = LibraryStore.open(db, create=False)
        except (LibraryFileError, sqlite3.Error):
            continue
        try:
            root = store.settings().root
        finally:
            store.close()
        if root:
            found[db] = Path(root)
    return found


def find_db(cwd: PathLike | None = None) -> Path:
    """The index to search when no --db is given: the library that holds the current folder, else the
    only library there is; otherwise an error listing them."""
    here = Path(cwd or os.getcwd()).resolve()
    libraries = known_libraries()
    holding = [
        (len(root.parts), db) for db, root in libraries.items() if here == root or root in here.parents
    ]
    if holding:
        return max(holding)[1]
    if len(libraries) == 1:
        return next(iter(libraries))
    if not libraries:
        raise UsageError(
            "no photo index yet: build one with `pixelsift index PHOTOS_DIR` (or pass --db FILE)"
        )
    listing = "\n".join(f"  --db {db}   ({root})" for db, root in libraries.items())
    raise UsageError(
        f"several photo indexes exist; run this inside a library folder, or pick one:\n{listing}"
    )


def _flags_missing(method: Callable[P, SearchResults]) -> Callable[P, SearchResults]:
    """`PhotoIndex.search` / `similar`, with the results whose file is gone marked (`_flag_missing`)."""

    @functools.wraps(method)
    def flagged(*args: P.args, **kwargs: P.kwargs) -> SearchResults:
        index = args[0]
        assert isinstance(index, PhotoIndex)
        return index._flag_missing(method(*args, **kwargs))

    return flagged


# What `repair_index` carries over: how the library is indexed, never what was computed from the photos.
REPAIR_KEEPS = ("root", "model", "detector", "labelers", "text_image", "ocr")


def repair_index(db_path: PathLike) -> tuple[Path, LibrarySettings]:
    """Keep a damaged index aside (`DB.damaged-TIME`, with its -wal and -shm files) and start a new one
    at `db_path` with the settings that can still be read from it (folder, models, labelers); the next
    `update` indexes the photos again. Returns (where the old file now is, the settings kept). Nothing
    is deleted."""
    db = Path(db_path).expanduser()
    if not db.is_file():
        raise UsageError(f"{db}: no index file to repair")
    with exclusive_lock(f"{db}.lock"):
        settings = LibraryStore.salvage_settings(db, REPAIR_KEEPS)
        aside = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                os.replace(f"{db}{suffix}", f"{aside}{suffix}")
        store = LibraryStore.open(db)
        try:
            with store.transaction():
                store.save_settings(**{key: getattr(settings, key) for key in REPAIR_KEEPS})
        finally:
            store.close()
    return aside, settings


class PhotoIndex:
    """The index of one photo folder: `update` it, then `search`, `similar` and `photo`.

    >>> index = PhotoIndex("photos.db")                         # doctest: +SKIP
    >>> index.update("~/Photos", detector="none")               # doctest: +SKIP
    >>> [r.path for r in index.search("dogs", n=3)]              # doctest: +SKIP
    """

    def __init__(self, db_path: PathLike, create: bool = True):
        self.db_path = Path(db_path).expanduser()
        # Read-only when the file or its folder cannot be written: searching works, `update` says why not.
        self.store = LibraryStore.open(self.db_path, create=create, readonly=None)
        self._searcher: Searcher | None = None
        self._caches: dict[str, VectorCache] = {}
        # the last duplicate scan: (write sequence, photos, threshold) -> (kind, ids, similarity) per group
        self._duplicates: tuple[tuple[int, int, float], list[tuple[str, list[int], float]]] | None = None
        self._probs: tuple[int, Probabilities] | None = None  # (write sequence number, matrix)

    @classmethod
    def for_folder(cls, folder: PathLike) -> PhotoIndex:
        """The index pixelsift keeps for `folder` in $PIXELSIFT_HOME (created on first update)."""
        index = cls(default_db_path(folder))
        if index.root is None and not index.store.readonly:
            with index.store.transaction():
                index.store.save_settings(root=str(Path(folder).expanduser().resolve()))
        return index

    @classmethod
    def find(cls, cwd: PathLike | None = None) -> PhotoIndex:
        """The index of the library holding `cwd` (see `find_db`)."""
        return cls(find_db(cwd), create=False)

    @property
    def conn(self) -> sqlite3.Connection:
        """The open SQLite connection (for inspection; pixelsift itself goes through `store`)."""
        return self.store.conn

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> PhotoIndex:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, sqlite3.DatabaseError):  # a damaged file or a full disk: one line that says so
            error = damaged_index_error(self.db_path, exc)
            if error is not None:
                raise error from None

    @property
    def root(self) -> Path | None:
        root = self.store.settings().root
        return Path(root) if root else None

    def _require_root(self) -> Path:
        root = self.root
        if root is None:
            raise UsageError(
                f"{self.db_path} is empty: index a folder first (pixelsift index PHOTOS_DIR --db ...)"
            )
        return root

    # ------------------------------------------------------------------------------------- updating
    def watch(
        self,
        folder: PathLike | None = None,
        *,
        stop: threading.Event | None = None,
        debounce: float = DEBOUNCE_SECONDS,
        interval: float = POLL_SECONDS,
        on_report: Callable[[IndexReport], None] | None = None,
        use_events: bool = True,
        **options: Any,
    ) -> str:
        """Index `folder` (default: the library's), then keep the index current while photos arrive,
        move and are deleted: an `update` each time the folder has been quiet for `debounce` seconds
        after a change, until `stop` is set. `on_report` gets each update's report; `options` are
        `update`'s. Changes are seen by file events with watchdog installed (`pixelsift[watch]`), else
        by comparing the folder's listing every `interval` seconds; returns which ("events", "polling").

        >>> stop = threading.Event()                                         # doctest: +SKIP
        >>> threading.Thread(target=index.watch, args=("~/Photos",), kwargs={"stop": stop}).start()
        """
        root = Path(folder).expanduser() if folder is not None else self.root
        if root is None:
            raise UsageError("give the photo folder to watch")

        def one() -> None:
            report = self.update(root, **options)
            if on_report is not None:
                on_report(report)

        return watch_folder(
            one,
            root,
            stop or threading.Event(),
            debounce=debounce,
            interval=interval,
            ignore=(str(self.db_path),),
            use_events=use_events,
        )

    def update(
        self,
        folder: PathLike | None = None,
        *,
        model: str | None = None,
        detector: str | None = None,
        labelers: Sequence[PathLike] = (),
        text_image: str | None = None,
        exclude: Sequence[str] = (),
        follow_links: bool = False,
        progress: bool | None = False,
        run_options: RunOptions | None = None,
        agnostic_nms: bool = False,
        from_batch: Sequence[PathLike] = (),
        ocr: bool | None = None,
        sources: Sequence[Source] = (),
        **run: Unpack[RunKwargs],
    ) -> IndexReport:
        """Index new and changed photos of `folder` (default: the library's folder), drop deleted ones.

        `detector`: "auto" (default detector when available), "none", or a detector name;
        `labelers`: models saved by `pixelsift train`, remembered for later runs; `follow_links`: also
        follow symbolic links that lead out of the folder (by default they are reported, not followed,
        so the library never leaves its folder); `agnostic_nms`: the
        detector keeps one box per object, whatever its classes; `from_batch`: output folders of
        `pixelsift batch embed` / `detect` jobs whose results are used for the photos they ran (matched
        by content hash) instead of running the networks here; `ocr`: read the text in photos (True),
        stop reading it (False), or as last time (None; remembered); `sources`: more kinds of evidence
        to compute for every photo (`library.sources.Source`: new photos get them as they are indexed,
        older ones catch up). How the networks run:
        `run_options`, or the keywords device, precision, engine, threads, batch_size, workers.
        """
        if self.store.readonly:
            reason = unwritable_reason(self.db_path) or "it was opened read-only"
            raise LibraryFileError(
                f"cannot index into {self.db_path}: {reason}. Make it writable, or index into another "
                "file with --db"
            )
        with exclusive_lock(f"{self.db_path}.lock", on_wait=self._waiting):
            options = IndexOptions(
                model=model,
                detector=detector,
                labelers=list(labelers),
                text_image=text_image,
                exclude=list(exclude),
                follow_links=follow_links,
                progress=progress,
                run_options=RunOptions.of(run_options, **run),
                agnostic_nms=agnostic_nms,
                from_batch=list(from_batch),
                ocr=ocr,
                sources=list(sources),
            )
            return self._update(folder, options)

    def _waiting(self, holder: str) -> None:
        log.warning(
            "another `pixelsift index` (%s) is updating %s; waiting for it to finish (Ctrl-C to stop)",
            holder,
            self.db_path,
        )

    def _update(self, folder: PathLike | None, options: IndexOptions) -> IndexReport:
        root = self._settle_root(folder)
        # The lock is held: whatever another indexer did before it let go is in the index now, so the
        # folder is compared with that, and nothing it did is done again.
        report = Indexer(self.store, root, options).run()
        for space in (
            FEATURES,
            PROBS,
            CLIP,
        ):  # bring the search caches up to date now, not at the first search
            if self.store.has_vectors(space):
                self._cache(space).load(eager=True)
        return report

    def _settle_root(self, folder: PathLike | None) -> Path:
        stored = self.root
        if folder is None:
            if stored is None:
                raise UsageError("which folder? pass the photo folder to index")
            folder = stored
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise UsageError(f"{folder}: no such folder")
        # When the library's own folder is gone, it moved (a new disk, a renamed parent): the relative
        # paths still hold, so the index follows it.
        if stored is not None and stored != root and stored.is_dir():
            raise UsageError(
                f"{self.db_path} is the index of {stored}; to index {root}, use another --db "
                "(or leave --db out: each folder gets its own index)"
            )
        with self.store.transaction():
            self.store.save_settings(root=str(root))
        return root

    # ------------------------------------------------------------------------------------- searching
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(self.store, self._require_root(), self._probabilities)
        return self._searcher

    def _cache(self, space: str) -> VectorCache:
        if space not in self._caches:
            self._caches[space] = VectorCache(self.store, self.db_path, space, normalize=space != PROBS)
        return self._caches[space]

    def _flag_missing(self, results: SearchResults) -> SearchResults:
        """Mark the results whose file is gone since it was indexed, and say in a note what to do."""
        for r in results:
            r.missing = not os.path.isfile(r.path)
        gone = sum(r.missing for r in results)
        if gone:
            root = self.root
            if root is not None and not root.is_dir():
                results.notes.append(
                    f"the library's folder {root} is not there any more; if it moved, run `pixelsift "
                    f"index NEW_FOLDER --db {self.db_path}` (the index follows it, nothing is computed again)"
                )
            else:
                results.notes.append(
                    f"{gone} of these photos are not on disk any more (marked missing); "
                    f"`pixelsift index --db {self.db_path}` updates the index"
                )
        return results

    @_flags_missing
    def search(
        self,
        query: str,
        n: int = 20,
        *,
        after: str | None = None,
        before: str | None = None,
        camera: str | None = None,
        min_score: float | None = None,
        match_all: bool = False,
        folder: str | None = None,
        label: str | None = None,
    ) -> SearchResults:
        """Photos matching a word ("cat", "dogs", "stop sign", a custom label), several words, or free
        text when the library has a text-image model. Best first. Several words rank: photos that show
        them all first, then photos that show the main one with the rest weak (`SearchResult.weak`
        names those); `match_all=True` lists only photos that show them all. A result whose file is
        gone since it was indexed has `missing` set, and a note says what to do.

        >>> index.search("cat", n=5, after="2020", camera="pixel")[0].path   # doctest: +SKIP
        >>> index.search("a dog on the beach", match_all=True)               # doctest: +SKIP
        """
        if n < 1:
            raise UsageError("-n must be at least 1")
        if not query.strip():
            raise UsageError("the query is empty")
        filters = Filters.parse(after, before, camera, min_score, match_all, folder, label)
        searcher = self.searcher()
        understood = searcher.understand(query)  # a UsageError for a query longer than any search
        results = self._search_pictures(query, understood, n, filters)
        return searcher.with_text(results, query, n, filters) if searcher.has_text() else results

    @_flags_missing
    def search_text(
        self,
        text: str,
        n: int = 20,
        *,
        after: str | None = None,
        before: str | None = None,
        camera: str | None = None,
        min_score: float | None = None,
        folder: str | None = None,
        label: str | None = None,
    ) -> SearchResults:
        """Photos whose text (read by `update(ocr=True)`) shows `text`: whole words, parts of words
        ("RE16" finds "RE16 TGK"), phrases, any case or accents, misspellings of an edit or two. Best
        first: how well and how prominently the text matches. A word written nowhere finds nothing.

        >>> index.search_text("wifi password")[0].matched[0].label     # doctest: +SKIP
        'WiFi password'
        """
        if n < 1:
            raise UsageError("-n must be at least 1")
        if not text.strip():
            raise UsageError("the text to search for is empty")
        filters = Filters.parse(after, before, camera, min_score, False, folder, label)
        return self.searcher().search_text(text, n, filters)

    def _search_pictures(self, query: str, understood: Query, n: int, filters: Filters) -> SearchResults:
        """`search` by what the photos show (concepts, or free text through a text-image model)."""
        searcher = self.searcher()
        text_model = self._text_model()
        if understood.understood and (not understood.unknown or text_model is None):
            text_scores = None
            if text_model is not None:
                cache = self._cache(CLIP)

                def text_scores(term: Term) -> tuple[np.ndarray, np.ndarray]:
                    ids, vectors = cache.current()
                    vector = l2_normalize(text_model.encode_text([f"a photo of {term.text}"])[0])
                    return ids, np.asarray(vectors @ vector)

            return searcher.search(understood, n, filters, text_scores)
        if text_model is not None:  # words no class names: the text-image model reads the sentence
            vector = text_model.encode_text([query])[0]
            hits = self._cache(CLIP).search(vector, n, searcher.allowed_ids(filters))
            hits = [(i, s) for i, s in hits if filters.min_score is None or s >= filters.min_score]
            results = searcher.results(hits, query, f"free text ({text_model.name})")
            if not results:
                results.message = f"no photo matches {query!r} {filters.describe()}"
            return results
        return SearchResults([], query, "no match", searcher.not_understood(understood))

    def _probabilities(self) -> Probabilities:
        """The classifier's probabilities of every photo (for word search), from their cache."""
        name = self.store.settings().model
        if not name or not self.store.has_vectors(PROBS):
            return Probabilities.empty()
        try:
            categories = get_model_spec(name).categories
        except UnknownModelError:  # a model this installation does not know: its classes are searched by name
            return Probabilities.empty()
        seq = self.store.seq()
        if self._probs is not None and self._probs[0] == seq:  # nothing written since: the same matrix
            return self._probs[1]
        ids, matrix = self._cache(PROBS).current()
        if matrix.ndim != 2 or matrix.shape[1] != len(categories):
            return Probabilities.empty()
        complete = self.store.status_counts().get(OK, 0) <= len(ids)  # once per write, not per search
        self._probs = (seq, Probabilities(ids, matrix, categories, complete))
        return self._probs[1]

    def _text_model(self) -> Any:
        """The library's text-image model, when photos were encoded with one and it loads here."""
        name = self.store.settings().text_image_model
        if not name or not self.store.has_vectors(CLIP):
            return None
        try:
            return load_text_image_model(name)
        except Exception as exc:
            raise UsageError(f"free-text search needs the text-image model {name!r}: {exc}") from None

    @_flags_missing
    def similar(
        self,
        photo: PathLike,
        n: int = 20,
        *,
        after: str | None = None,
        before: str | None = None,
        camera: str | None = None,
        min_score: float | None = None,
        folder: str | None = None,
        label: str | None = None,
    ) -> SearchResults:
        """Photos that look most like `photo` (a photo of the library or any image file), best first.

        >>> index.similar("~/Photos/cat.jpg", n=5)[0].score       # doctest: +SKIP
        """
        if n < 1:
            raise UsageError("-n must be at least 1")
        filters = Filters.parse(after, before, camera, min_score, folder=folder, label=label)
        searcher = self.searcher()
        vector, own_id = self._vector_of(Path(photo).expanduser())
        exclude = {own_id} if own_id is not None else set()
        cache = self._cache(FEATURES)
        found = cache.search(vector, n, searcher.allowed_ids(filters), exclude)
        hits = [(i, s) for i, s in found if filters.min_score is None or s >= filters.min_score]
        results = searcher.results(hits, str(photo), "similar")
        if not results:
            others = self.store.count_vectors(FEATURES) - len(exclude)
            if others <= 0:
                results.message = f"no other photo in the index {self.db_path}"
            elif filters.active and not (found and filters.min_score is not None):
                results.message = (
                    f"{others} other photo{'s are' if others != 1 else ' is'} in the index, none "
                    f"{filters.describe()}"
                )
            else:
                results.message = f"no photo is similar with a score of at least {filters.min_score:g}"
        return results

    def photos(
        self,
        offset: int = 0,
        limit: int = 60,
        *,
        after: str | None = None,
        before: str | None = None,
        camera: str | None = None,
        folder: str | None = None,
        label: str | None = None,
    ) -> tuple[int, SearchResults]:
        """Browse the library without a query: (how many photos pass the filters, `limit` of them from
        `offset`), newest first (EXIF date, else the file's time). Each result's score is 1.

        >>> total, page = index.photos(0, 60, after="2021", folder="trips", label="dog")  # doctest: +SKIP
        """
        if offset < 0 or not 1 <= limit <= 1000:
            raise UsageError("offset must be 0 or more and limit between 1 and 1000")
        filters = Filters.parse(after, before, camera, folder=folder, label=label)
        total, ids = self.store.photo_page(filters, offset, limit)
        results = self.searcher().results([(i, 1.0) for i in ids], "", "browse")
        if not total:
            results.message = (
                f"no photo {filters.describe()}" if filters.active else "the index holds no photo"
            )
        return total, results

    def duplicates(
        self, threshold: float = NEAR_THRESHOLD, progress: bool | None = False
    ) -> list[DuplicateGroup]:
        """Groups of photos that are copies of each other: exact (the same bytes) first, then near
        duplicates (resized, recompressed or slightly cropped copies, bursts: feature cosine at least
        `threshold`), largest groups first. Nothing is deleted or moved.

        >>> [(g.kind, g.paths) for g in index.duplicates()]               # doctest: +SKIP
        """
        if not 0.0 < threshold <= 1.0:
            raise UsageError(f"--threshold must be above 0 and at most 1, not {threshold}")
        # The all-pairs scan is redone only after the library changed: a new write sequence (photos
        # added, changed or copied) or fewer photos (a deleted one may have linked a group); photos
        # moved since are settled below, from the store.
        key = (self.store.seq(), self.store.count_vectors(FEATURES), threshold)
        if self._duplicates is None or self._duplicates[0] != key:
            exact = [DuplicateGroup(EXACT, ids) for ids in self.store.content_groups()]
            ids, vectors = self._cache(FEATURES).current()
            keep = np.isin(ids, np.fromiter(self.store.alive(ids.tolist()), np.int64))
            ids, vectors = ids[keep], np.asarray(vectors)[keep]
            with progress_bar(total=len(ids), desc="duplicates", enabled=progress, unit="photo") as bar:
                near = near_groups(ids, vectors, threshold, [g.ids for g in exact], bar.update)
            found = exact + sorted(near, key=lambda g: (-len(g.ids), -g.similarity))
            self._duplicates = (key, [(g.kind, list(g.ids), g.similarity) for g in found])
        groups = [DuplicateGroup(kind, list(ids), similarity=sim) for kind, ids, sim in self._duplicates[1]]
        summaries = self.store.summaries([i for g in groups for i in g.ids])
        for group in groups:
            group.ids = [i for i in group.ids if i in summaries]  # deleted since: left out
            group.paths = [summaries[i].path for i in group.ids]
        return [g for g in groups if len(g.ids) > 1]

    def _vector_of(self, photo: Path) -> tuple[np.ndarray, int | None]:
        """The photo's feature vector: stored when it is in the library (by path or content), else
        computed."""
        root = self._require_root()
        found = None
        with contextlib.suppress(ValueError):  # ValueError: not under the library's folder
            found = self.store.vector_by_path(FEATURES, photo.resolve().relative_to(root).as_posix())
        if found is None and photo.is_file():
            try:
                digest = sha256_file(str(photo))
            except OSError:
                digest = None
            if digest:
                found = self.store.vector_by_content(FEATURES, digest)
        if found is not None:
            photo_id, vector = found
            return vector, photo_id
        return self._compute_vector(photo), None

    def _compute_vector(self, photo: Path) -> np.ndarray:
        from pixelsift.runtime.loaded import ImageModel  # imports torch: only for a photo not indexed

        name = self.store.settings().model
        if not name:
            raise UsageError(f"{self.db_path} has no indexed photos yet")
        model = ImageModel.load(name)
        try:
            pixels, _ = model.decode(photo)
        except ImageError as exc:
            raise UsageError(f"{photo}: {exc.reason}") from None
        features, _ = model.run(pixels[None])
        return np.asarray(features[0])

    # ----------------------------------------------------------------------------------- inspecting
    def photo(self, photo_id: int) -> dict[str, Any]:
        """Everything the index knows about one photo: file facts, labels, detections (for display)."""
        details = self.store.photo(photo_id)
        if details is None:
            raise UsageError(f"no photo with id {photo_id} in {self.db_path}")
        return details.to_dict(full_path=str(self._require_root() / details.row.path))

    def failures(self) -> list[tuple[str, str]]:
        """(path, reason) of every photo that could not be read."""
        failed = self.store.failures()
        root = self._require_root() if failed else None
        return [(str(root / path), reason) for path, reason in failed if root is not None]

    def stats(self) -> dict[str, Any]:
        """What the index holds: photos, failures, the models it was built with, and how many photos
        no object detector has looked at (`without_detection`: their searches rest on the classifier);
        whether it reads text (`ocr`), in how many photos it has (`text_read`) and how many lines; how
        many photos the scene regions have not looked at yet (`without_scene`: an index from before
        them, until its next update)."""
        count = self.store.status_counts()
        settings = self.store.settings()
        read, lines = self.store.count_text_read()
        return {
            "db": str(self.db_path),
            "root": str(self.root) if self.root else None,
            "photos": count.get("ok", 0),
            "failed": count.get("failed", 0),
            "model": settings.model,
            "detector": settings.detector,
            "without_detection": self.store.count_without_detection(),
            "without_scene": len(self.store.photos_without_labels_of(scene.SOURCE)),
            "text_image_model": settings.text_image_model,
            "ocr": settings.ocr == "on",
            "text_read": read,
            "text_lines": lines,
            "last_indexed": self.store.last_indexed(),
        }
