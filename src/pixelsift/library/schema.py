"""The photo index's SQLite file: connection settings and numbered schema migrations.

One file holds a whole library (plus SQLite's `-wal` / `-shm` companions while it is open). WAL mode
lets searches read while `pixelsift index` writes; every batch is one transaction, so a process killed at
any moment leaves the file as it was after its last committed batch. Vectors are float32 BLOBs.

`MIGRATIONS` run through `core.sqlite.migrate` (one transaction each, version in `user_version`). Every
other statement on this file lives in `library.store`.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from pixelsift.core.sqlite import Migration, run_script, schema_version
from pixelsift.core.sqlite import connect as sqlite_connect
from pixelsift.core.sqlite import migrate as run_migrations
from pixelsift.errors import LibraryFileError


def _v1_initial(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE photos (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- stable: never reused after a photo is deleted
            path TEXT NOT NULL UNIQUE,             -- relative to the library root, '/'-separated
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
            error TEXT,
            width INTEGER,
            height INTEGER,
            taken_at TEXT,                         -- EXIF DateTimeOriginal, ISO 8601, local time
            camera TEXT,
            latitude REAL,
            longitude REAL,
            indexed_at REAL NOT NULL
        );
        CREATE INDEX photos_sha256 ON photos (sha256);
        CREATE TABLE labels (
            photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('class', 'custom')),
            source TEXT NOT NULL,                  -- the classifier's or the labeler's name
            label TEXT NOT NULL,
            concept TEXT,                          -- WordNet synset id of an ImageNet class
            score REAL NOT NULL
        );
        CREATE INDEX labels_photo ON labels (photo_id);
        CREATE INDEX labels_concept ON labels (concept, photo_id, score);
        CREATE INDEX labels_label ON labels (label COLLATE NOCASE, photo_id);
        CREATE TABLE embeddings (
            photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
            space TEXT NOT NULL,                   -- 'features' (the classifier's) or 'clip'
            seq INTEGER NOT NULL,                  -- write sequence number: search caches catch up by it
            vector BLOB NOT NULL,                  -- float32
            PRIMARY KEY (photo_id, space)
        );
        CREATE INDEX embeddings_seq ON embeddings (space, seq);
        """,
    )


def _v2_detections(conn: sqlite3.Connection) -> None:
    """Objects found by a detector (COCO classes), and which detector has looked at each photo."""
    run_script(
        conn,
        """
        CREATE TABLE detections (
            photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
            detector TEXT NOT NULL,
            label TEXT NOT NULL,
            score REAL NOT NULL,
            x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL  -- pixels
        );
        CREATE INDEX detections_photo ON detections (photo_id);
        CREATE INDEX detections_label ON detections (label COLLATE NOCASE, photo_id, score);
        ALTER TABLE photos ADD COLUMN detector TEXT;  -- NULL: no detector has run on this photo
        """,
    )


def _v3_unrecognised(conn: sqlite3.Connection) -> None:
    """Photos a labeler looked at and did not recognise (unlike its training photos): no labels, and
    not looked at again until the labeler changes."""
    run_script(
        conn,
        """
        CREATE TABLE unrecognised (
            photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
            source TEXT NOT NULL,                  -- the labeler's name
            distance REAL NOT NULL,                -- to its nearest training photo (cosine)
            PRIMARY KEY (photo_id, source)
        );
        """,
    )


def _v4_object_areas(conn: sqlite3.Connection) -> None:
    """Each object's own area, as a fraction of its photo, when an instance segmenter found it (its
    mask's share; NULL from a detector, whose box is all there is)."""
    run_script(conn, "ALTER TABLE detections ADD COLUMN area REAL;")


def _v5_text(conn: sqlite3.Connection) -> None:
    """The text read in photos (`index --ocr`): one row per line, and a full-text index of trigrams over
    its normalised form (any case, no accents), which serves words, parts of words and phrases alike.
    `photos.text_reader`: the reader that has read the photo (NULL: not read yet)."""
    run_script(
        conn,
        """
        CREATE TABLE text_lines (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
            line INTEGER NOT NULL,                 -- reading order in the photo
            text TEXT NOT NULL,                    -- as read
            norm TEXT NOT NULL,                    -- lower case, accents removed: what search compares
            score REAL NOT NULL,
            x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,  -- pixels
            size REAL NOT NULL,                    -- the letters' height, a fraction of the photo's
            words TEXT NOT NULL                    -- JSON: [[word, x1, y1, x2, y2], ...]
        );
        CREATE INDEX text_lines_photo ON text_lines (photo_id);
        CREATE VIRTUAL TABLE text_search USING fts5 (
            norm, content = 'text_lines', content_rowid = 'id', tokenize = 'trigram'
        );
        CREATE TRIGGER text_lines_added AFTER INSERT ON text_lines BEGIN
            INSERT INTO text_search (rowid, norm) VALUES (new.id, new.norm);
        END;
        CREATE TRIGGER text_lines_removed AFTER DELETE ON text_lines BEGIN
            INSERT INTO text_search (text_search, rowid, norm) VALUES ('delete', old.id, old.norm);
        END;
        ALTER TABLE photos ADD COLUMN text_reader TEXT;
        """,
    )


MIGRATIONS: list[Migration] = [
    _v1_initial,
    _v2_detections,
    _v3_unrecognised,
    _v4_object_areas,
    _v5_text,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _too_new(found: int, known: int) -> LibraryFileError:
    return LibraryFileError(
        f"this index was written by a newer pixelsift (schema {found}, this one knows {known}); "
        "upgrade pixelsift: pip install -U pixelsift"
    )


def _created(conn: sqlite3.Connection) -> None:
    """A new library's identity, in the transaction that creates its tables."""
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("library_id", uuid.uuid4().hex), ("created_at", f"{time.time():.3f}"), ("seq", "0")],
    )


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to `target`, one migration per transaction; returns the version it started at."""
    return run_migrations(conn, MIGRATIONS, too_new=_too_new, on_create=_created, target=target)


def _file_unwritable(path: Path) -> str | None:
    if path.exists():
        try:
            os.close(os.open(path, os.O_RDWR))
        except OSError as exc:
            return f"the file is read-only ({exc.strerror})"
    return None


# SQLite's -shm file of a WAL index takes 32 KB: with less room than this an index cannot even be opened
# for writing ("disk I/O error"), while reading it as immutable still works.
MIN_FREE_BYTES = 64 << 10


def _folder_unwritable(folder: Path) -> str | None:
    try:  # SQLite writes its -wal and -shm files beside the index
        with tempfile.TemporaryFile(dir=folder, prefix=".pixelsift-probe-"):
            pass
        room = os.statvfs(folder)
    except OSError as exc:
        return f"its folder {folder} is not writable ({exc.strerror})"
    if room.f_bavail * room.f_frsize < MIN_FREE_BYTES:
        return f"the disk of {folder} is full"
    return None


def unwritable_reason(path: Path) -> str | None:
    """Why SQLite could not write the index at `path` (None: it can). Tried, not guessed from the
    permission bits: root ignores those, while an immutable file or a read-only mount refuses root too."""
    return _file_unwritable(path) or _folder_unwritable(path.parent)


def connect(path: str | Path, create: bool = True, readonly: bool | None = False) -> sqlite3.Connection:
    """Open (and create or migrate) the index at `path`.

    `readonly`: True opens without ever writing (a read-only file or folder is fine; a folder where
    SQLite cannot write its `-shm` file is opened as immutable); None opens read-only exactly when the
    index cannot be written; False needs write access and says why when there is none."""
    path = Path(path).expanduser()
    if not path.exists() and (readonly or not create):
        raise LibraryFileError(
            f"no photo index at {path}; build one with: pixelsift index PHOTOS_DIR --db {path}"
        )
    if not readonly:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryFileError(
                f"cannot create the index {path} ({exc.strerror}); pass --db FILE in a writable folder, or "
                "set PIXELSIFT_HOME to one"
            ) from None
        reason = unwritable_reason(path)
        if reason is not None and readonly is None and path.exists():
            readonly = True
        elif reason is not None:
            raise LibraryFileError(
                f"cannot write the index {path}: {reason}. Searching it still works; to index, make it "
                "writable or index into another file with --db"
            )
    uri = f"file:{path}"
    if readonly:
        uri += "?mode=ro"
        # Without a writable folder SQLite cannot create the `-shm` file a WAL database needs to be read:
        # then the file is read as immutable (nobody can be writing it from here anyway).
        if _folder_unwritable(path.parent):
            uri += "&immutable=1"
    # Two processes opening a new index at the same moment can meet SQLite's transient "database is
    # locked" / "locking protocol" while one of them switches the file to WAL and creates the schema
    # (the busy timeout does not cover every case of it): try again a few times before giving up.
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return _open(path, uri, readonly)
        except sqlite3.DatabaseError as exc:
            transient = isinstance(exc, sqlite3.OperationalError) and _transient(exc)
            if attempt == OPEN_ATTEMPTS - 1 or not transient:
                text = str(exc).lower()
                if "malformed" in text or "corrupt" in text or "full" in text:
                    raise damaged_index_error(path, exc) or exc from None
                raise LibraryFileError(f"{path} is not a readable pixelsift index ({exc})") from None
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


OPEN_ATTEMPTS = 5
_DAMAGE = ("malformed", "not a database", "disk i/o error", "corrupt")


def damaged_index_error(path: str | os.PathLike[str], exc: BaseException) -> LibraryFileError | None:
    """The one line for an SQLite error that says the index file is damaged or its disk is full (None:
    another kind of error). The file is never deleted: `pixelsift index --repair` keeps it aside."""
    text = str(exc).lower()
    if "full" in text:
        return LibraryFileError(
            f"{path}: the disk is full ({exc}); free some space and run again. What was committed is kept"
        )
    if any(word in text for word in _DAMAGE):
        return LibraryFileError(
            f"{path}: the index file is damaged ({exc}). `pixelsift index --repair --db {path}` keeps it "
            "aside and builds the index again from the photos, with the same settings"
        )
    return None


def _transient(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text or "protocol" in text


def _open(path: Path, uri: str, readonly: bool | None) -> sqlite3.Connection:
    # isolation_level=None: autocommit; transactions are explicit (`transaction`), one per batch.
    conn = sqlite_connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LibraryFileError(f"{path}: SQLite could not switch the file to WAL mode ({mode})")
        # NORMAL in WAL mode: a commit survives a crash of the process (what kill -9 does); only a power
        # loss may drop the last commits, never corrupt the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _check_is_library(conn, path)
        if not readonly:
            migrate(conn)
        else:
            conn.execute("PRAGMA query_only = 1")  # `LibraryStore.readonly` reads it back
        if readonly and schema_version(conn) != SCHEMA_VERSION:
            raise LibraryFileError(
                f"{path} has schema version {schema_version(conn)}; open it once for writing "
                "(e.g. `pixelsift index`) to migrate it"
            )
    except sqlite3.OperationalError:
        conn.close()
        raise  # perhaps transient: `connect` decides
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LibraryFileError(f"{path} is not a readable pixelsift index ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _check_is_library(conn: sqlite3.Connection, path: Path) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "meta" not in tables:
        raise LibraryFileError(f"{path} is an SQLite database, but not a pixelsift photo index")
