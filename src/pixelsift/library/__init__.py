"""The photo library: index a folder of photos once, keep the index current, search it by content.

    >>> from pixelsift import PhotoIndex
    >>> index = PhotoIndex.for_folder("~/Photos")     # doctest: +SKIP
    >>> index.update(progress=True)                   # doctest: +SKIP
    >>> index.search("cat").to_pandas()               # doctest: +SKIP

Modules: `store` (every SQL statement, typed rows from `rows`), `schema` (migrations, connection),
`changes` (folder scan, change plan), `indexer` (incremental, crash-safe updates), `query` (a query as
concepts), `fusion` (one score per photo and concept), `search` (queries and results; what a word
means comes from `models.vocabulary`), `vectors` (nearest-neighbour search and the probability cache),
`metadata` (EXIF), `labelers` (detector and custom labelers).
"""

from __future__ import annotations

from pixelsift.library.photo_index import PhotoIndex, default_db_path, find_db
from pixelsift.library.runs import IndexReport
from pixelsift.library.search import SearchResult, SearchResults

__all__ = ["IndexReport", "PhotoIndex", "SearchResult", "SearchResults", "default_db_path", "find_db"]
