"""Bad environment values and options: one line naming the variable or option and what it accepts,
exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from helpers import run_cli
from pixelsift.cli import main


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("PIXELSIFT_MAX_PIXELS", "abc", "whole number of pixels"),
        ("PIXELSIFT_MAX_PIXELS", "1.5e9", "whole number of pixels"),
        ("PIXELSIFT_MAX_PIXELS", "-5", "at least 1"),
        ("PIXELSIFT_THREADS", "abc", "whole number of compute threads"),
        ("PIXELSIFT_THREADS", "0", "at least 1"),
        ("PIXELSIFT_MAX_DECODE_MB", "lots", "whole number of megabytes"),
        ("PIXELSIFT_DEVICE", "gpu", "auto | cpu | cuda | cuda:N | mps"),
        ("PIXELSIFT_PRECISION", "int4", "auto, fp32, bf16, fp16"),
        ("PIXELSIFT_OFFLINE", "maybe", "use 1 (never download) or 0"),
    ],
)
def test_a_bad_environment_value_is_one_line_and_exit_code_2(
    name: str, value: str, accepts: str, monkeypatch: pytest.MonkeyPatch, samples, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(name, value)
    code = main(["classify", str(samples / "chelsea.png")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert f"{name}={value!r}" in lines[0] and accepts in lines[0]


@pytest.mark.parametrize(
    "name",
    [
        "PIXELSIFT_HOME",
        "PIXELSIFT_OFFLINE",
        "PIXELSIFT_DEVICE",
        "PIXELSIFT_PRECISION",
        "PIXELSIFT_ENGINE",
        "PIXELSIFT_THREADS",
        "PIXELSIFT_MAX_PIXELS",
        "PIXELSIFT_MAX_DECODE_MB",
    ],
)
def test_an_empty_environment_value_is_one_line_and_exit_code_2(
    name: str, monkeypatch: pytest.MonkeyPatch, samples, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(name, "  ")
    code = main(["classify", str(samples / "chelsea.png")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert f"{name} is set but empty" in lines[0] and "or unset it" in lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["serve", "--port", "99999"], "between 1 and 65535"),
        (["serve", "--port", "http"], "not a whole number"),
        (["serve", "--max-upload-mb", "nan"], "above 0"),
        (["serve", "--max-upload-mb", "-1"], "above 0"),
    ],
)
def test_a_bad_option_value_is_argparse_usage_with_exit_code_2(args: list[str], words: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert words in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty (0 bytes)"),
        (b"\x95" * 100, "not a plain weights file"),
        (b"PK\x03\x04junk", "not a readable"),
    ],
    ids=["empty", "random", "bad-zip"],
)
def test_models_add_refuses_a_bad_weights_file_in_one_line(
    content: bytes, words: str, tmp_path, capsys, home
) -> None:  # type: ignore[no-untyped-def]
    weights = tmp_path / "w.pth"
    weights.write_bytes(content)
    code = main(["models", "add", "resnet18", str(weights)])
    _, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and words in err
    assert weights.read_bytes() == content  # the user's file is never changed
    assert not list(home.rglob("*.pth"))  # nothing was imported


def test_a_bad_environment_value_in_the_web_app_is_a_400(monkeypatch: pytest.MonkeyPatch, samples) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from pixelsift.web import WebConfig, create_app

    client = TestClient(base_url="http://127.0.0.1", app=create_app(WebConfig()))
    monkeypatch.setenv("PIXELSIFT_MAX_PIXELS", "lots")
    data = (samples / "coffee.png").read_bytes()
    response = client.post("/api/classify", files={"file": ("coffee.png", data, "image/png")})
    assert response.status_code == 400
    assert "PIXELSIFT_MAX_PIXELS='lots'" in response.json()["error"]


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--threads", "100000"], {}, "--threads must be a whole number from 1 to"),
        (["--threads", "0"], {}, "--threads must be a whole number from 1 to"),
        (["--workers", "5000"], {}, "--workers must be a whole number from 0 to"),
        (["--batch-size", "1000000"], {}, "--batch-size must be a whole number from 1 to 1024"),
        ([], {"PIXELSIFT_THREADS": "99999"}, "PIXELSIFT_THREADS='99999' must be a whole number from 1 to"),
    ],
)
def test_thread_and_batch_counts_are_bounded_before_any_work(
    args: list[str], env: dict[str, str], words: str, monkeypatch: pytest.MonkeyPatch, samples, capsys
) -> None:  # type: ignore[no-untyped-def]
    from pixelsift.config import THREADS_PER_CPU, available_cpus

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["classify", str(samples / "chelsea.png"), *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert words in err and len(err.strip().splitlines()) == 1
    if "threads" in words.lower() or "workers" in words:
        assert f"to {THREADS_PER_CPU * available_cpus()} ({THREADS_PER_CPU} per CPU" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--lr", "nan"], "--lr must be a finite number above 0"),
        (["--lr", "inf"], "--lr must be a finite number above 0"),
        (["--hidden", "100000000"], "--hidden must be a whole number from 0 to 65536"),
        (["--augment-views", "100000"], "--augment-views must be a whole number from 0 to 100"),
        (["--dropout", "nan"], "--dropout must be from 0"),
    ],
)
def test_fine_tuning_numbers_are_bounded_before_any_work(
    args: list[str], words: str, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "never-read"  # the options are refused before the folder is looked at
    code = main(["train", str(missing), "--finetune", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err and words in err, err


def test_serve_checks_what_it_needs_before_it_says_serving(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = run_cli("serve", "--port", port)
    assert busy.returncode == 1 and "serving on" not in busy.stderr
    assert f"port {port} on 127.0.0.1 is in use" in busy.stderr and "Traceback" not in busy.stderr
    for args, words, code in (
        (["-m", "nosuch"], "unknown model 'nosuch'", 2),
        (["--detector", "efficientnet_lite0"], "serve --detector needs a detector", 2),
        (["--host", "999.1.1.1"], "cannot listen on '999.1.1.1'", 1),
    ):
        done = run_cli("serve", *args, "--port", port)
        assert done.returncode == code and words in done.stderr, (args, done.stderr)
        assert "serving on" not in done.stderr and "Traceback" not in done.stderr
