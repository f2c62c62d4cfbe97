"""The saved-model file: one safetensors file holding arrays and a JSON description, nothing executable.

Layout (standard safetensors, readable by any safetensors tool):
- the header's `__metadata__["pixelsift"]` is a JSON document: format name and version, pixelsift
  version, backbone (registry name, weights file and its sha256, preprocessing), class names,
  classifier type and parameters, training metrics, and a sha256 `digest` of everything else;
- the tensors are the classifier's arrays (and fine-tuned backbone weights, when there are any).

Reading parses the header with `json` and the tensors with safetensors, checks the format version and
the digest, and never unpickles or evaluates anything. The digest detects corruption and edits made
without pixelsift; it is a checksum, not a signature.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pixelsift.core.outputs import as_new_file
from pixelsift.errors import ModelFileError, UsageError

FORMAT = "pixelsift-model"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 64 << 20
MAX_MODEL_BYTES = 4 << 30  # a fine-tuned large backbone is well under 1 GiB
_NOT_OURS = (
    "it is not a pixelsift model file. pixelsift saves models as .safetensors files with `pixelsift train`; "
    "pickles and torch checkpoints are never loaded, since loading them can run code"
)


def content_digest(metadata: dict[str, Any], tensors: dict[str, np.ndarray]) -> str:
    """sha256 over the metadata (without its digest) and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    meta = {k: v for k, v in metadata.items() if k != "digest"}
    digest.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        arr = np.require(tensors[name], requirements="C")
        digest.update(f"\0{name}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _read_header(data: bytes, path: Path) -> dict[str, Any]:
    size = int.from_bytes(data[:8], "little")
    if len(data) < 8 or (len(data) < 10 and size >= 2):
        raise ModelFileError(
            f"{path}: the file is too short to be a model file ({len(data)} bytes); {_NOT_OURS}"
        )
    if size < 2 or size > len(data) - 8 or size > MAX_HEADER_BYTES or data[8:9] != b"{":
        raise ModelFileError(f"{path}: {_NOT_OURS}")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
        raise ModelFileError(f"{path}: the file header is damaged (not valid JSON); {_NOT_OURS}") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: {_NOT_OURS}")
    return header


def _data_size(header: dict[str, Any], path: Path) -> int:
    """The bytes of tensor data the header declares (the largest end offset)."""
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ModelFileError(f"{path}: the file header is damaged (tensor {name!r}); {_NOT_OURS}")
        end = max(end, offsets[1])
    return end


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON description only (no digest check): format and version fields already validated."""
    target = Path(path)
    with open(target, "rb") as fh:
        head = fh.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else 0
        data = head + fh.read(min(size, MAX_HEADER_BYTES) + 1)
    return _metadata_of(_read_header(data, target), target)


def _metadata_of(header: dict[str, Any], path: Path) -> dict[str, Any]:
    text = (header.get("__metadata__") or {}).get("pixelsift")
    if not isinstance(text, str):
        raise ModelFileError(f"{path}: a safetensors file, but not one written by pixelsift ({_NOT_OURS})")
    try:
        metadata = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(
            f"{path}: the model description inside the file is damaged (not valid JSON)"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path}: {_NOT_OURS}")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: the model file has no valid format version; it is damaged")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: this model file has format version {version}, written by pixelsift "
            f"{metadata.get('pixelsift_version', '(unknown)')}; this pixelsift reads version "
            f"{FORMAT_VERSION} and older. Upgrade pixelsift (pip install -U pixelsift) to use it."
        )
    return metadata


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metadata, tensors) of a pixelsift model file, verified; `ModelFileError` says what is wrong."""
    target = Path(path)
    try:
        mode = os.stat(target).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):  # a FIFO would block the open, a device never end
            raise UsageError(
                f"{target}: not a regular file (a device or a pipe); give a .safetensors model file"
            )
        with open(target, "rb") as fh:
            # The header first, bounded; then the size it declares, checked against the file's size before
            # anything more is read (a truncated download, or a huge sparse file, costs nothing).
            head = fh.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else 0
            header_bytes = head + fh.read(min(size, MAX_HEADER_BYTES) + 1)
            header = _read_header(header_bytes, target)
            metadata = _metadata_of(header, target)
            expected = 8 + size + _data_size(header, target)
            actual = os.fstat(fh.fileno()).st_size
            if actual != expected:
                raise ModelFileError(
                    f"{target}: the model file is corrupt or truncated ({actual} bytes where its header "
                    f"declares {expected}); use an intact copy or train the model again"
                )
            if expected > MAX_MODEL_BYTES:
                raise ModelFileError(
                    f"{target}: {expected / 2**30:.1f} GiB is over the 4 GiB a model file may hold"
                )
            fh.seek(8 + size)
            data = header_bytes[: 8 + size] + fh.read()
    except FileNotFoundError:
        raise UsageError(f"{target}: no such model file") from None
    except IsADirectoryError:
        raise UsageError(f"{target}: is a folder, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"{target}: cannot read the model file ({exc.strerror or exc})") from None
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = dict(load(data))
    except (SafetensorError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{target}: the model file is corrupt or truncated ({exc})") from None
    if metadata.get("digest") != content_digest(metadata, tensors):
        raise ModelFileError(
            f"{target}: the model file was changed after pixelsift wrote it (its checksum does not match): "
            "it is corrupt or was edited. Use an intact copy or train the model again."
        )
    return metadata, tensors


def is_model_file(path: Path) -> bool:
    try:
        read_metadata(path)
    except (ModelFileError, OSError):
        return False
    return True


def write_model_file(
    path: str | os.PathLike[str], metadata: dict[str, Any], tensors: dict[str, np.ndarray]
) -> Path:
    """Write atomically (temporary file, then rename). An existing file is replaced only when it is a
    pixelsift model file itself: other files are never overwritten."""
    from safetensors.numpy import save

    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(f"{target}: is a folder; give a file name such as {target / ('model' + SUFFIX)}")
    if target.exists() and not is_model_file(target):
        raise UsageError(
            f"{target}: a file that is not a pixelsift model is already there; choose another name"
        )
    meta = {**metadata, "format": FORMAT, "format_version": FORMAT_VERSION}
    arrays = {name: np.require(arr, requirements="C") for name, arr in tensors.items()}  # keeps 0-d
    meta["digest"] = content_digest(meta, arrays)
    blob = save(arrays, metadata={"pixelsift": json.dumps(meta, sort_keys=True)})
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        as_new_file(tmp_name)
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return target
