"""Embeddings with the real offline model: the Embedder as a scikit-learn citizen, the cache, the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks

from helpers import write_image
from pixelsift.cli import main
from pixelsift.errors import EmbeddingError
from pixelsift.features.embed import embed
from pixelsift.features.embedder import Embedder
from pixelsift.imaging.datasets import read_dataset

CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_transformers_unfitted",
]


@pytest.mark.parametrize("check", CHECKS)
def test_embedder_passes_scikit_learn_conventions(check: str) -> None:
    getattr(estimator_checks, check)("Embedder", Embedder())


def test_clone_get_params_and_not_fitted() -> None:
    embedder = Embedder("efficientnet_lite0", normalize="none", batch_size=2)
    params = embedder.get_params()
    assert (
        params["model"] == "efficientnet_lite0"
        and params["normalize"] == "none"
        and params["batch_size"] == 2
    )
    twin = clone(embedder)
    assert twin is not embedder and twin.get_params() == params
    with pytest.raises(NotFittedError):
        embedder.transform(["a.jpg"])
    fitted = clone(embedder).fit()
    assert fitted.n_features_out_ == 1280
    assert list(fitted.get_feature_names_out()[:2]) == ["f0", "f1"]
    assert not hasattr(clone(fitted), "n_features_out_"), "clone drops what fit learned"


def labelled(root: Path, split: str) -> tuple[list[str], list[str]]:
    samples = read_dataset(root).samples_of(split)
    return [str(s.path) for s in samples], [s.label for s in samples]


def test_pipeline_grid_search_and_cross_val_score(shapes: Path) -> None:
    X, y = labelled(shapes, "train")
    Xv, yv = labelled(shapes, "valid")
    pipe = make_pipeline(Embedder(), LogisticRegression(max_iter=2000))
    assert pipe.fit(X, y).score(Xv, yv) >= 0.9
    vectors = pipe[0].transform(Xv)
    assert vectors.dtype == np.float32 and vectors.shape == (len(Xv), 1280)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), np.sqrt(1280), rtol=1e-5)  # unit RMS
    unit = Embedder(normalize="l2").fit().transform(Xv)
    np.testing.assert_allclose(unit * np.sqrt(1280), vectors, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embed(Xv).vectors, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(Exception, match="normalize must be one of"):
        Embedder(normalize="l3").fit()
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.shape == (2,) and scores.min() >= 0.75
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 10.0]}, cv=2).fit(X, y)
    assert search.best_params_["logisticregression__C"] in (0.1, 10.0)


def test_unreadable_image_raises_with_every_bad_path_or_gives_nan_rows(shapes: Path, tmp_path: Path) -> None:
    good = str(next((shapes / "valid").rglob("*.jpg")))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = str(tmp_path / "missing.jpg")
    embedder = Embedder().fit()
    with pytest.raises(EmbeddingError) as info:
        embedder.transform([good, str(empty), missing])
    assert info.value.failures == [(str(empty), "empty file (0 bytes)"), (missing, "no such file")]
    assert "on_error='nan'" in str(info.value)
    with pytest.warns(UserWarning, match="2 image"):
        out = Embedder(on_error="nan").fit().transform([good, str(empty), missing])
    assert not np.isnan(out[0]).any() and np.isnan(out[1:]).all()


def test_cache_hit_runs_no_network_and_a_changed_file_is_embedded_again(
    home: Path, tmp_path: Path, network_calls: list[int]
) -> None:
    folder = tmp_path / "photos"
    for i in range(3):
        write_image(folder / f"p{i}.png", size=(96, 96), color=(40 * i, 100, 200), seed=i)
    calls = network_calls
    first = embed(folder)
    assert sum(calls) == 3
    again = embed(folder)
    assert sum(calls) == 3, "second run: every vector came from the cache"
    np.testing.assert_array_equal(again.vectors, first.vectors)

    write_image(folder / "p1.png", size=(96, 96), color=(250, 250, 0), seed=9)  # same name, new photo
    changed = embed(folder)
    assert sum(calls) == 4, "only the changed file went through the network"
    np.testing.assert_array_equal(changed.vectors[[0, 2]], first.vectors[[0, 2]])
    assert not np.allclose(changed.vectors[1], first.vectors[1])

    shutil.copy(folder / "p0.png", folder / "copy-of-p0.png")  # same content, new name: a cache hit
    embed(folder)
    assert sum(calls) == 4
    uncached = embed(folder, cache=False)
    assert sum(calls) == 8, "cache=False runs the network"
    np.testing.assert_allclose(uncached.vectors, embed(folder).vectors, rtol=1e-5, atol=1e-6)


def test_embed_dataframe_has_split_and_label_for_a_data_set(shapes: Path) -> None:
    result = embed(shapes)
    frame = result.to_pandas()
    assert result.shape == (48, 1280)
    assert list(frame.columns[:4]) == ["path", "split", "label", "f0"]
    assert set(frame["split"]) == {"train", "valid"}
    assert frame.loc[0, "label"] == Path(frame.loc[0, "path"]).parent.name


@pytest.mark.parametrize("suffix", [".parquet", ".npz", ".csv"])
def test_embed_cli_writes_each_format_and_prints_the_shape(
    shapes: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"vectors{suffix}"
    assert main(["embed", str(shapes / "valid"), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"(16, 1280) -> {out}"
    reference = embed(shapes / "valid")
    if suffix == ".npz":
        with np.load(out) as data:
            np.testing.assert_array_equal(data["vectors"], reference.vectors)
            assert list(data["labels"]) == reference.labels
            assert list(data["paths"]) == reference.paths
        return
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(frame["label"]) == reference.labels and list(frame["path"]) == reference.paths
    vectors = frame.filter(regex=r"^f\d+$").to_numpy()
    np.testing.assert_allclose(vectors, reference.vectors, rtol=1e-6)


def test_embed_cli_reports_unreadable_inputs_and_exits_1(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    good = next((shapes / "valid").rglob("*.jpg"))
    out = tmp_path / "v.npz"
    assert main(["embed", str(good), str(bad), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == f"(1, 1280) -> {out}"
    assert f"pixelsift: {bad}: not an image" in captured.err
    assert "1 of 2 inputs failed" in captured.err
    with np.load(out) as data:
        assert list(data["paths"]) == [str(good)]


@pytest.mark.parametrize("suffix", [".parquet", ".npz", ".csv"])
def test_embed_o_never_overwrites_a_file_of_the_users_but_replaces_its_own(
    shapes: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = tmp_path / f"notes{suffix}"
    if suffix == ".parquet":
        pd.DataFrame({"name": ["a", "b"], "x": [1, 2]}).to_parquet(theirs)
    elif suffix == ".npz":
        np.savez(theirs, weights=np.arange(3))
    else:
        theirs.write_text("name,x\na,1\n")
    before = theirs.read_bytes()
    one = str(next((shapes / "valid").rglob("*.jpg")))
    assert main(["embed", one, "-o", str(theirs)]) == 2
    err = capsys.readouterr().err
    assert "not pixelsift embeddings is already there" in err and "--force" in err
    assert theirs.read_bytes() == before, "the user's file is untouched"
    ours = tmp_path / f"ours{suffix}"
    assert main(["embed", one, "-o", str(ours)]) == 0
    assert main(["embed", str(shapes / "valid"), "-o", str(ours)]) == 0, "its own file is replaced"
    assert capsys.readouterr().out.splitlines()[-1] == f"(16, 1280) -> {ours}"
    assert main(["embed", one, "-o", str(theirs), "--force"]) == 0, "--force replaces anything"
    assert theirs.read_bytes() != before
