"""The saved-model file: safetensors + JSON, verified on load, and nothing in it is ever executed."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from pixelsift.errors import ModelFileError, UsageError
from pixelsift.transfer.modelfile import FORMAT_VERSION, read_metadata, read_model_file, write_model_file

TENSORS = {"head.w": np.arange(6, dtype=np.float64).reshape(2, 3), "count": np.array(7, dtype=np.int64)}
META = {"classes": ["a", "b"], "note": "ünïcode"}


def rewrite_header(path: Path, change: dict[str, object]) -> None:
    """Edit the JSON description inside a model file the way a person with a text editor could."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["pixelsift"])
    meta.update(change)
    header["__metadata__"]["pixelsift"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])


def test_round_trip_keeps_arrays_dtypes_and_metadata(tmp_path: Path) -> None:
    path = write_model_file(tmp_path / "m.safetensors", META, TENSORS)
    meta, tensors = read_model_file(path)
    assert meta["classes"] == ["a", "b"] and meta["note"] == "ünïcode"
    assert meta["format"] == "pixelsift-model" and meta["format_version"] == FORMAT_VERSION
    assert set(tensors) == set(TENSORS)
    for name, value in TENSORS.items():
        assert tensors[name].dtype == value.dtype and tensors[name].shape == value.shape
        np.testing.assert_array_equal(tensors[name], value)
    assert read_metadata(path)["classes"] == ["a", "b"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_model_file_gets_the_permissions_of_any_new_file(tmp_path: Path, umask: int) -> None:
    import os

    before = os.umask(umask)
    try:
        from pixelsift.core.outputs import current_umask

        assert current_umask() == umask, "read without changing it"
        path = write_model_file(tmp_path / "m.safetensors", META, TENSORS)
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, oct(path.stat().st_mode)  # 0644 under 022


def test_an_edited_description_is_refused(tmp_path: Path) -> None:
    path = write_model_file(tmp_path / "m.safetensors", META, TENSORS)
    rewrite_header(path, {"classes": ["b", "a"]})
    with pytest.raises(ModelFileError, match="checksum does not match"):
        read_model_file(path)


def test_changed_tensor_bytes_are_refused(tmp_path: Path) -> None:
    path = write_model_file(tmp_path / "m.safetensors", META, TENSORS)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum does not match"):
        read_model_file(path)


def test_truncated_and_garbage_files_are_refused(tmp_path: Path) -> None:
    path = write_model_file(tmp_path / "m.safetensors", META, TENSORS)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        read_model_file(path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 3)
    with pytest.raises(ModelFileError, match="too short"):
        read_model_file(junk)


def test_a_newer_format_version_says_to_upgrade(tmp_path: Path) -> None:
    path = write_model_file(tmp_path / "m.safetensors", META, TENSORS)
    rewrite_header(path, {"format_version": FORMAT_VERSION + 1, "pixelsift_version": "9.0"})
    with pytest.raises(ModelFileError, match=r"format version 2, written by pixelsift 9\.0.*Upgrade"):
        read_model_file(path)


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch /tmp/pixelsift-model-pwned",))


def test_a_pickle_posing_as_a_model_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = Path("/tmp/pixelsift-model-pwned")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"classes": _Exploit()}))
    with pytest.raises(ModelFileError, match="not a pixelsift model file"):
        read_model_file(evil)
    assert not marker.exists()


def test_other_safetensors_files_are_not_models(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"x": np.ones(2, np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="not one written by pixelsift"):
        read_model_file(path)


def test_writing_never_overwrites_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(b"my precious photo")
    with pytest.raises(UsageError, match="not a pixelsift model"):
        write_model_file(photo, META, TENSORS)
    assert photo.read_bytes() == b"my precious photo"
    model = write_model_file(tmp_path / "m.safetensors", META, TENSORS)
    write_model_file(model, {**META, "classes": ["x", "y"]}, TENSORS)  # replacing a model is fine
    assert read_model_file(model)[0]["classes"] == ["x", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.jpg", "m.safetensors"], (
        "no temp files left"
    )
