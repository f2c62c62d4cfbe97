"""A batch job's inputs: folders (recursive), glob patterns, URIs (`s3://bucket/prefix/`, through
pyarrow's filesystems) and manifest files, as one sorted list.

Manifests: `.txt` (one path a line; blank lines and `#` comments skipped), `.csv` or `.parquet`
with a `path` column (paths or URIs); relative paths in a manifest are relative to its folder. Every
local input becomes an absolute path, so a resumed job matches its earlier shards wherever it is
started from. Entries of a folder that cannot be images (broken links, FIFOs) are kept: they become
rows with their error.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterable
from pathlib import Path

from pixelsift.batch.files import is_uri, list_uri
from pixelsift.core.optional import optional_import
from pixelsift.core.paths import paths_from_columns
from pixelsift.errors import UsageError
from pixelsift.imaging.images import iter_folder

MANIFESTS = (".txt", ".csv", ".parquet")


def _manifest(path: Path) -> list[str]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        elif suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is None or "path" not in reader.fieldnames:
                    raise UsageError(f"{path}: a CSV manifest needs a 'path' column")
                entries = [row["path"].strip() for row in reader if (row.get("path") or "").strip()]
        else:
            pq = optional_import("pyarrow.parquet", "pyarrow", "parquet", "Parquet manifests")
            schema = pq.read_schema(path)
            if "path" not in schema.names:
                raise UsageError(f"{path}: a Parquet manifest needs a 'path' column")
            raw = ["path_bytes"] if "path_bytes" in schema.names else []
            data = pq.read_table(path, columns=["path", *raw]).to_pydict()
            entries = paths_from_columns(data["path"], data.get("path_bytes"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the manifest ({exc})") from None
    except UsageError:
        raise
    except Exception as exc:  # a damaged Parquet file
        raise UsageError(f"{path}: not a readable manifest ({exc})") from None
    return [e if is_uri(e) or os.path.isabs(e) else os.path.abspath(path.parent / e) for e in entries]


def batch_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Every input as an absolute path, sorted and once each; a UsageError when there are none or an
    input names nothing."""
    found: set[str] = set()
    for item in inputs:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if is_uri(text):  # s3://bucket/prefix/, gs://..., file:///... (pyarrow's filesystems)
            found.update(list_uri(text))
            continue
        if path.is_dir():
            for entry in iter_folder(path):
                found.add(os.path.abspath(entry.path if not isinstance(entry, Path) else entry))
        elif path.is_file() and path.suffix.lower() in MANIFESTS:
            found.update(_manifest(path))
        elif path.exists() or path.is_symlink():  # a file, or a FIFO, device or broken link: its error row
            found.add(os.path.abspath(path))
        elif glob.has_magic(text):
            matches = glob.glob(os.path.expanduser(text), recursive=True)
            if not matches:
                raise UsageError(f"{text}: the pattern matches no file")
            found.update(os.path.abspath(m) for m in matches if os.path.isfile(m))
        else:
            raise UsageError(f"{text}: no such file or folder")
    if not found:
        raise UsageError(
            "no inputs: give folders, files, glob patterns or manifest files (.txt, .csv, .parquet)"
        )
    return sorted(found)
