"""The model registry: every model pixelsift can run is a `ModelSpec` record, looked up by name.

A record says what the model is (task, source, licence, published accuracy), how its inputs are
prepared (`Preprocessing`), which weights file it needs (`WeightsFile`), and how to build its network.
Backends register records with `register`; users see them through `list_models` / `get_model_spec`
and `pixelsift models`.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import UnknownModelError
from .preprocess import Preprocessing

if TYPE_CHECKING:
    from pathlib import Path

    import torch.nn as nn

TASKS = ("classify", "detect", "text-image")


@dataclass(frozen=True)
class WeightsFile:
    """Where a model's weights come from and how to check them.

    `sha256`: the full hash when the source publishes it; `hash_prefix`: the sha256 prefix that
    torchvision puts in its file names; `package` / `package_path`: an installed Python package that
    ships the file (then no download is ever needed).
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    hash_prefix: str | None = None
    package: str | None = None
    package_path: str | None = None
    size_mb: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str
    source: str
    description: str
    licence: str
    preprocessing: Preprocessing | None = None
    weights: WeightsFile | None = None
    embed_dim: int | None = None
    imagenet_top1: float | None = None
    categories: tuple[str, ...] = field(default=(), repr=False)
    # Builds the network with random weights, in the layout its weights file expects.
    build: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    # Renames / reshapes a loaded state_dict into `build()`'s layout (e.g. old DenseNet keys).
    convert_state: Callable[[dict[str, Any]], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )
    # Downloads the weights into `path` when the source has its own hub (timm); default: `weights.url`.
    download: Callable[[Path], None] | None = field(default=None, repr=False, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {TASKS}, not {self.task!r}")

    @property
    def input_size(self) -> int | None:
        return self.preprocessing.crop if self.preprocessing else self.extra.get("input_size")


_REGISTRY: dict[str, ModelSpec] = {}
_dynamic: list[tuple[str, Callable[[str], ModelSpec]]] = []  # (prefix, factory) e.g. ("timm/", ...)
_lock = threading.RLock()
_stage = 0  # 0: nothing registered yet, 1: families that need no torchvision, 2: all of them
_rank: dict[str, tuple[int, int]] = {}  # name -> (family, registration order): the listing order
_family = 1_000  # records registered outside the catalog (plugins, tests) list after the built-in ones

DEFAULT_CLASSIFIER = "efficientnet_lite0"


def register(spec: ModelSpec) -> ModelSpec:
    """Add a record; a second record with the same name is an error, never a silent replacement."""
    with _lock:
        if spec.name in _REGISTRY:
            raise ValueError(f"model {spec.name!r} is already registered")
        _REGISTRY[spec.name] = spec
        _rank[spec.name] = (_family, len(_rank))
    return spec


@contextlib.contextmanager
def registering_family(rank: int) -> Iterator[None]:
    """Records registered inside this block belong to the catalog's family number `rank`."""
    global _family
    with _lock:
        previous, _family = _family, rank
        try:
            yield
        finally:
            _family = previous


def register_prefix(prefix: str, factory: Callable[[str], ModelSpec]) -> None:
    """Models named `prefix + anything` are built on demand by `factory` (e.g. "timm/")."""
    with _lock:
        _dynamic.append((prefix, factory))


def _populate(full: bool = True) -> None:
    """Register the built-in families: those that need no torchvision, and with `full` all of them."""
    global _stage
    with _lock:
        target = 2 if full else 1
        if _stage >= target:
            return
        from . import catalog

        if _stage < 1:
            _stage = 1
            catalog.register_families(heavy=False)
        if target == 2:
            _stage = 2
            catalog.register_families(heavy=True)


def _lookup(name: str) -> ModelSpec | None:
    with _lock:
        if name in _REGISTRY:
            return _REGISTRY[name]
        for prefix, factory in _dynamic:
            if name.startswith(prefix) and len(name) > len(prefix):
                spec = factory(name)
                _REGISTRY[name] = spec
                _rank[name] = (_family, len(_rank))
                return spec
    return None


def get_model_spec(name: str) -> ModelSpec:
    """The record for `name`; raises `UnknownModelError` with close matches when there is none."""
    _populate(full=False)
    spec = _lookup(name)
    if spec is None:
        _populate(full=True)
        spec = _lookup(name)
    if spec is not None:
        return spec
    with _lock:
        names = list(_REGISTRY)
    raise UnknownModelError(name, difflib.get_close_matches(name, names, n=3, cutoff=0.5))


def list_models(pattern: str = "*", task: str | None = None, complete: bool = True) -> list[ModelSpec]:
    """Registered records whose name matches the wildcard `pattern`, optionally of one task.

    `complete=False` leaves out the families that need torchvision imported unless something already
    registered them (for quick questions whose answer cannot be one of them).

    >>> [m.name for m in list_models("resnet*")]
    ['resnet18', 'resnet50']
    """
    _populate(full=complete)
    with _lock:
        specs = sorted(_REGISTRY.values(), key=lambda spec: _rank.get(spec.name, (_family, 0)))
    return [
        s
        for s in specs
        if fnmatch.fnmatchcase(s.name, pattern) and (task is None or s.task == task) and "/" not in s.name
    ]
