"""Model files are checked before they are trusted. Each crafted file below is re-signed, so it passes
the checksum: the structure itself must be refused (one line, exit 1), never loop, never read a huge
file whole, never give a probability outside [0, 1]."""

from __future__ import annotations

import json
import os
import resource
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import write_image
from pixelsift.cli import main
from pixelsift.errors import ModelFileError
from pixelsift.transfer.modelfile import read_model_file, write_model_file
from pixelsift.transfer.trained import load_trained

Forge = Callable[[dict[str, Any], dict[str, np.ndarray]], None]


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colours") / "set"
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        for i in range(5):
            write_image(root / label / f"{i}.jpg", color=colour, seed=i)
    return root


@pytest.fixture(scope="module")
def trained(colours: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved model per head kind: a forest, k-NN and a dense (logistic regression) head."""
    from pixelsift.transfer.training import train

    folder = tmp_path_factory.mktemp("models")
    return {
        kind: train(colours, classifier=kind).model.save(folder / f"{kind}.safetensors")
        for kind in ("forest", "knn", "logreg")
    }


def forged(source: Path, target: Path, forge: Forge) -> Path:
    metadata, tensors = read_model_file(source)
    tensors = dict(tensors)
    forge(metadata, tensors)
    write_model_file(target, metadata, tensors)  # re-signed: the checksum matches the forgery
    read_model_file(target)
    return target


def _float_children(meta: dict[str, Any], t: dict[str, np.ndarray]) -> None:
    left = t["head.forest.left"].astype(np.float64)
    left[left > 0] = 0.5  # rounds to 0: a walk back to the root, forever
    t["head.forest.left"] = left


def _negative_leaves(meta: dict[str, Any], t: dict[str, np.ndarray]) -> None:
    value = t["head.forest.value"].copy()
    value[:, 0] = -3.0
    value[:, 1] = 4.0
    t["head.forest.value"] = value


def _rejected_text(meta: dict[str, Any], t: dict[str, np.ndarray]) -> None:
    meta["domain"]["valid_rejected"] = "abc"


def _narrow_examples(meta: dict[str, Any], t: dict[str, np.ndarray]) -> None:
    t["domain.examples"] = t["domain.examples"][:, :7].copy()


def _no_neighbours(meta: dict[str, Any], t: dict[str, np.ndarray]) -> None:
    t["head.knn.vectors"] = t["head.knn.vectors"][:0].copy()
    t["head.knn.labels"] = t["head.knn.labels"][:0].copy()


CASES: dict[str, tuple[str, Forge, str]] = {
    "forest child index 0.5": ("forest", _float_children, "tree indices are not integers"),
    "negative leaf fractions": ("forest", _negative_leaves, "not probabilities"),
    "valid_rejected='abc'": ("logreg", _rejected_text, "valid_rejected"),
    "domain examples of another width": ("logreg", _narrow_examples, "domain examples have 7 features"),
    "k-NN without vectors": ("knn", _no_neighbours, "no nearest-neighbour vectors"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_crafted_model_file_is_refused_with_one_line(
    case: str,
    trained: dict[str, Path],
    colours: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kind, forge, words = CASES[case]
    path = forged(trained[kind], tmp_path / "forged.safetensors", forge)
    with pytest.raises(ModelFileError, match=words):
        load_trained(path)
    started = time.monotonic()
    assert main(["predict", str(path), str(colours / "red" / "0.jpg")]) == 1
    assert time.monotonic() - started < 60  # refused, not looping
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]


def test_the_intact_models_still_predict(trained: dict[str, Path], colours: Path) -> None:
    for path in trained.values():
        model = load_trained(path)
        (result,) = model.predict([colours / "red" / "1.jpg"])
        assert result.labels[0] == "red"
        assert all(0.0 <= s <= 1.0 for s in result.scores)


def test_a_tree_walk_is_bounded_even_for_arrays_built_by_hand() -> None:
    from pixelsift.transfer.heads import ForestHead

    # node 0's children point back at node 0: the walk must stop with an error, not spin
    head = ForestHead(
        left=np.array([0, -1]),
        right=np.array([0, -1]),
        feature=np.array([0, 0]),
        threshold=np.array([0.5, 0.0]),
        value=np.array([[0.5, 0.5], [1.0, 0.0]]),
        roots=np.array([0]),
        feature_count=1,
    )
    with pytest.raises(ModelFileError, match="does not end"):
        head.predict_proba(np.zeros((1, 1), np.float32))


def test_a_truncated_model_file_is_refused_before_it_is_read(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = trained["logreg"].read_bytes()
    cut = tmp_path / "half.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=f"{len(data) // 2} bytes where its header declares {len(data)}"):
        read_model_file(cut)


def test_a_huge_sparse_file_costs_no_memory(
    tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a valid-looking header that declares 16 bytes of data, in a 6 GB file of zeros
    header = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    huge = tmp_path / "huge.safetensors"
    with open(huge, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(6 << 30)  # sparse: no disk used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["predict", str(huge), str(samples / "chelsea.png")]) == 1
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # reading it whole took 6.2 GB
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not a pixelsift model file" in err


def test_a_deeply_nested_header_is_refused(tmp_path: Path) -> None:
    nested = ("[" * 100_000 + "]" * 100_000).encode()
    header = b'{"__metadata__": {"pixelsift": "x"}, "t": ' + nested + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ModelFileError, match="damaged"):
        read_model_file(path)
    description = json.dumps({"pixelsift": "[" * 100_000 + "]" * 100_000})
    header = json.dumps({"__metadata__": json.loads(description)}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ModelFileError, match="model description inside the file is damaged"):
        read_model_file(path)


@pytest.mark.parametrize(
    "target,words",
    [("folder", "is a folder"), ("/dev/null", "not a regular file"), ("truncated", "damaged or truncated")],
)
def test_models_add_names_what_the_file_is(
    target: str, words: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if target == "folder":
        path = str(tmp_path)
    elif target == "truncated":
        data = trained["logreg"].read_bytes()
        (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
        path = str(tmp_path / "cut.safetensors")
    else:
        path = target
    code = main(["models", "add", "resnet18", path])
    err = capsys.readouterr().err
    assert code in (1, 2) and words in err and "Traceback" not in err


def test_a_damaged_onnx_detector_is_one_line(
    tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(os.urandom(64))
    assert main(["detect", "-m", str(garbage), str(samples / "chelsea.png")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not a readable ONNX model" in err
