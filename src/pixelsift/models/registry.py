"""The model registry: every model pixelsift can run is a `ModelSpec` record, looked up by name.

A record (`models/records.py`) says what the model is, how its inputs are prepared, which weights file
it needs and how to build its network.
Backends register records with `register`; users see them through `list_models` / `get_model_spec`
and `pixelsift models`.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import importlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from pixelsift.errors import UnknownModelError, UsageError
from pixelsift.models import catalog
from pixelsift.models.records import ClassifierSpec, DetectorSpec, ModelSpec, SegmenterSpec, TextImageSpec

_REGISTRY: dict[str, ModelSpec] = {}
_dynamic: list[tuple[str, Callable[[str], ModelSpec]]] = []  # (prefix, factory) e.g. ("timm/", ...)
_lock = threading.RLock()
_stage = 0  # 0: nothing registered yet, 1: families that need no torchvision, 2: all of them
_rank: dict[str, tuple[int, int]] = {}  # name -> (family, registration order): the listing order
_family = 1_000  # records registered outside the catalog (plugins, tests) list after the built-in ones

DEFAULT_CLASSIFIER = "efficientnet_lite0"
DEFAULT_TOP_K = 5  # classes per photo when none is asked for: the CLI, Python, the web and batch alike


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
        if _stage < 1:
            _stage = 1
            _register_families(heavy=False)
        if target == 2:
            _stage = 2
            _register_families(heavy=True)


def _register_families(heavy: bool) -> None:
    """Register the catalog's families that need torchvision (`heavy`) or the others."""
    for rank, (module, needs_torchvision) in enumerate(catalog.FAMILIES):
        if needs_torchvision == heavy:
            with registering_family(rank):
                # the family modules import heavy packages only when their models are built
                importlib.import_module(module).register_models()


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


def _folded(name: str) -> str:
    """A name as people spell it in papers and on the command line: "VGG-16", "ResNet_50"."""
    return re.sub(r"[-_\s]", "", name.lower())


def _lookup_spelling(name: str) -> ModelSpec | None:
    """The one registered model whose name differs from `name` only in case, '-' or '_'."""
    wanted = _folded(name)
    with _lock:
        matches = [spec for key, spec in _REGISTRY.items() if "/" not in key and _folded(key) == wanted]
    return matches[0] if len(matches) == 1 else None


def get_model_spec(name: str) -> ModelSpec:
    """The record for `name` (any case; "VGG-16" finds vgg16); raises `UnknownModelError` with close
    matches when there is none."""
    _populate(full=False)
    spec = _lookup(name) or _lookup_spelling(name)
    if spec is None:
        _populate(full=True)
        spec = _lookup(name) or _lookup_spelling(name)
    if spec is not None:
        return spec
    with _lock:
        names = {_folded(n): n for n in _REGISTRY if "/" not in n}
    close = difflib.get_close_matches(_folded(name), list(names), n=3, cutoff=0.5)
    raise UnknownModelError(name, [names[c] for c in close])


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


_Spec = TypeVar("_Spec", bound=ModelSpec)
_PURPOSE = {
    ClassifierSpec: "an image classifier",
    DetectorSpec: "a detector",
    SegmenterSpec: "an instance segmenter",
    TextImageSpec: "a text-image model",
}
_LISTING = {
    ClassifierSpec: "classify",
    DetectorSpec: "detect",
    SegmenterSpec: "segment",
    TextImageSpec: "text-image",
}


def get_spec_of(name: str, kind: type[_Spec], needed_for: str = "this") -> _Spec:
    """The record for `name` when it is of record type `kind`, else a usage error that says so.

    >>> get_spec_of("efficientnet_lite0", ClassifierSpec).input_size
    224
    """
    spec = get_model_spec(name)
    if not isinstance(spec, kind):
        raise UsageError(
            f"model {name!r} is a {spec.task} model; {needed_for} needs {_PURPOSE[kind]} "
            f"(list them: pixelsift models --task {_LISTING[kind]})"
        )
    return spec
