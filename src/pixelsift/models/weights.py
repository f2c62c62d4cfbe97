"""Weights files: resolve -> cache -> verify -> load. The network is only touched by `fetch`.

Layout: `$PIXELSIFT_HOME/weights/<source>/<filename>`, with a `<filename>.json` note beside files that
`pixelsift models add` imported (their sha256 and whether it matched the published one).
Loading never downloads when `PIXELSIFT_OFFLINE=1`; a missing file raises `WeightsMissingError`, whose
message names the file, the folder, and the two commands that fix it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelsift.config import get_settings
from pixelsift.core.hashing import sha256_file
from pixelsift.core.outputs import as_new_file
from pixelsift.errors import UsageError, WeightsInvalidError, WeightsMissingError
from pixelsift.models.records import ModelSpec

if TYPE_CHECKING:
    from torch import nn

PACKAGED, CACHED, MISSING = "packaged", "cached", "missing"


def _require_weights(spec: ModelSpec) -> None:
    if spec.weights is None:
        raise UsageError(f"model {spec.name!r} has no weights file to manage")


def cache_path(spec: ModelSpec) -> Path:
    """Where this model's weights live in the pixelsift cache (whether or not the file exists)."""
    _require_weights(spec)
    assert spec.weights is not None
    return get_settings().weights_dir / spec.source / spec.weights.filename


def packaged_path(spec: ModelSpec) -> Path | None:
    """The weights file inside an installed Python package, when the model has one and it is installed."""
    if spec.weights is None or not spec.weights.package or not spec.weights.package_path:
        return None
    try:
        found = importlib.util.find_spec(spec.weights.package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        candidate = Path(location) / spec.weights.package_path
        if candidate.is_file():
            return candidate
    return None


def weights_status(spec: ModelSpec) -> str:
    """ "packaged" (ships in an installed package), "cached" (in PIXELSIFT_HOME) or "missing"."""
    if spec.weights is None:
        return MISSING
    if packaged_path(spec):
        return PACKAGED
    return CACHED if cache_path(spec).is_file() else MISSING


def matches_published_hash(spec: ModelSpec, sha256: str) -> bool | None:
    """True / False against the source's published hash; None when the source publishes none."""
    assert spec.weights is not None
    if spec.weights.sha256:
        return sha256 == spec.weights.sha256
    if spec.weights.hash_prefix:
        return sha256.startswith(spec.weights.hash_prefix)
    return None


def missing_error(spec: ModelSpec, reason: str) -> WeightsMissingError:
    assert spec.weights is not None
    published = bool(spec.weights.sha256 or spec.weights.hash_prefix)
    install = spec.install if spec.weights.package else None
    return WeightsMissingError(
        spec.name,
        spec.weights.filename,
        cache_path(spec),
        reason,
        spec.weights.url,
        hash_published=published,
        install=install,
    )


def resolve(spec: ModelSpec, download: bool = True) -> Path:
    """Path of a usable weights file for `spec`: packaged, else cached, else downloaded (when allowed)."""
    _require_weights(spec)
    found = packaged_path(spec)
    if found:
        return found
    path = cache_path(spec)
    if path.is_file():
        return path
    if not download:
        raise missing_error(spec, "not in the cache")
    if get_settings().offline:
        raise missing_error(spec, "not in the cache, and PIXELSIFT_OFFLINE=1 forbids downloading")
    return fetch(spec)


def fetch(spec: ModelSpec, progress: bool = True) -> Path:
    """Download the weights into the cache, verify the published hash, and move into place atomically."""
    _require_weights(spec)
    assert spec.weights is not None
    found = packaged_path(spec)
    if found:
        return found
    target = cache_path(spec)
    if target.is_file():
        return target
    if get_settings().offline:
        raise missing_error(spec, "PIXELSIFT_OFFLINE=1 forbids downloading")
    if spec.download is None and not spec.weights.url:
        raise missing_error(spec, "the source publishes no download address")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        partial = Path(tmp) / spec.weights.filename
        try:
            if spec.download is not None:
                spec.download(partial)
            else:
                from torch.hub import download_url_to_file

                assert spec.weights.url is not None
                download_url_to_file(spec.weights.url, str(partial), progress=progress)
        except Exception as exc:  # network errors come in many types (URLError, HTTPError, OSError ...)
            raise missing_error(spec, f"the download failed ({type(exc).__name__}: {exc})") from None
        digest = sha256_file(partial)
        if matches_published_hash(spec, digest) is False:
            raise WeightsInvalidError(
                f"downloaded weights for {spec.name!r} have sha256 {digest}, which does not match the "
                f"published hash; the file was discarded. Try `pixelsift models fetch {spec.name}` again."
            )
        os.replace(partial, target)
    return target


def is_safetensors(path: Path) -> bool:
    """safetensors files start with an 8-byte header length and a JSON header (whatever their name)."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def read_state_dict(path: Path) -> dict[str, Any]:
    """A state_dict from a safetensors or torch file, never executing pickled code."""
    if is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        # truncated, or its header does not fit the file
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsInvalidError(f"{path} is a damaged or truncated .safetensors file ({exc})") from None
    import pickle

    import torch

    if path.stat().st_size == 0:
        raise WeightsInvalidError(f"{path} is empty (0 bytes): not a weights file")
    try:
        with open(path, "rb") as fh:  # a file object: torch.load would pick a loader by the file's suffix
            state = torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsInvalidError(
            f"{path} is not a plain weights file that can be loaded safely: it is damaged, or it holds "
            "Python objects other than tensors, and loading those could run code. Save a state_dict (or "
            ".safetensors) instead."
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, IndexError, KeyError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise WeightsInvalidError(f"{path} is not a readable weights file ({first})") from None
    for key in ("state_dict", "model_state_dict", "model"):  # common training-checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsInvalidError(f"{path} holds a {type(state).__name__}, not a state_dict")
    return state


def read_weights(spec: ModelSpec, path: Path) -> dict[str, Any]:
    """The state_dict in `path`, read by the model's own safe reader when its source has a file format
    of its own (`spec.read_weights`, e.g. ultralytics checkpoints), else by `read_state_dict`."""
    reader = spec.read_weights
    return dict(reader(path)) if reader is not None else read_state_dict(path)


def load_into(spec: ModelSpec, net: nn.Module, path: Path) -> nn.Module:
    """Load `path` into `net` strictly, explaining a mismatch in terms of keys and shapes."""
    state = read_weights(spec, path)
    if spec.convert_state is not None:
        state = spec.convert_state(state)
    return load_state(spec, net, state, str(path))


def load_state(spec: ModelSpec, net: nn.Module, state: dict[str, Any], source: str) -> nn.Module:
    """Load `state` (read from `source`) into `net` strictly, explaining a mismatch in terms of keys
    and shapes."""
    own = net.state_dict()
    # Checkpoints older than PyTorch 0.4 lack BatchNorm's counter; BatchNorm fills it in itself.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} tensors have the wrong shape (e.g. {wrong[0]})")
        if missing:
            parts.append(f"{len(missing)} tensors are missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors are not part of {spec.name} (e.g. {unexpected[0]})")
        raise WeightsInvalidError(f"{source} does not fit model {spec.name!r}: " + "; ".join(parts) + ".")
    net.load_state_dict(state, strict=True)
    return net


def add(spec: ModelSpec, source_file: str | os.PathLike[str]) -> tuple[Path, bool | None]:
    """Import a weights file the user has: check it loads strictly, then copy it into the cache.

    Returns the cached path and whether it matched the published hash (None: nothing published).
    The user's file is only read, never moved or changed.
    """
    _require_weights(spec)
    source = Path(source_file).expanduser()
    if source.is_dir():
        raise UsageError(f"{source}: is a folder; give the weights file (.safetensors, .pth)")
    if source.exists() and not source.is_file():
        raise UsageError(f"{source}: not a regular file (a device or a pipe); give the weights file")
    if not source.is_file():
        raise UsageError(f"{source}: no such file")
    if spec.build is None:
        raise UsageError(f"model {spec.name!r} cannot import weights files")
    net = load_into(spec, spec.build(), source)
    digest = sha256_file(source)
    verified = matches_published_hash(spec, digest)
    target = cache_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".add-", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        if target.suffix == ".safetensors" and not is_safetensors(source):
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path))
        else:
            shutil.copyfile(source, tmp_path)
        as_new_file(tmp_path)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
    note = {"sha256": digest, "imported_from": str(source.resolve()), "matches_published_hash": verified}
    target.with_name(target.name + ".json").write_text(json.dumps(note, indent=2))
    return target, verified


def load_network(spec: ModelSpec, download: bool = True) -> nn.Module:
    """The model's network with its weights loaded, in eval mode."""
    if spec.build is None:
        raise UsageError(f"model {spec.name!r} is not a torch network")
    path = resolve(spec, download=download)
    net = load_into(spec, spec.build(), path)
    return net.eval()
