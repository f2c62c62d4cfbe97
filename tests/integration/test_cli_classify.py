"""`pixelsift classify` as users meet it: formats, bad inputs, exit codes, stdin."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import as_unprivileged_user, make_bad_inputs, run_cli, shared_tmp_dir
from pixelsift.cli import main
from pixelsift.runtime.classify import classify


def test_table_output_like_the_seed(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(samples / "coffee.png"), "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(samples / "coffee.png")
    assert lines[1].split() == ["Class", "Probability", "score"]
    label, score = lines[2].rsplit(maxsplit=1)
    assert label.strip() == "espresso" and len(score.split(".")[1]) == 3, "scores rounded to 3 places"
    assert len(lines) == 3 + 3  # path, header, 3 rows, blank


def test_json_and_csv_parse_and_match_the_python_api(
    samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(samples / "chelsea.png"), str(samples / "coffee.png")]
    api = classify(paths, top_k=3)
    assert main(["classify", *paths, "-k", "3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == api.to_dicts()
    assert main(["classify", *paths, "-k", "3", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6
    assert [(r["path"], int(r["rank"]), r["label"]) for r in rows] == [
        (r.path, rank, label) for r in api for rank, label in enumerate(r.labels, 1)
    ]
    assert [float(r["score"]) for r in rows] == [s for r in api for s in r.scores]


def test_bad_inputs_in_a_folder_are_reported_skipped_and_exit_1(
    samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Zero bytes, truncated, not an image, permission denied, decompression bomb: all in one folder."""
    # Warm up (imports, model load) as the current user: `nobody` cannot read the Python installation.
    assert main(["classify", str(samples / "coffee.png"), "-k", "1"]) == 0
    capsys.readouterr()
    with shared_tmp_dir() as folder:
        shutil.copy(samples / "coffee.png", folder / "a_coffee.png")
        bad = make_bad_inputs(folder)
        shutil.copy(samples / "chelsea.png", folder / "z_cat.png")
        with as_unprivileged_user():
            code = main(["classify", str(folder), "--format", "json", "-k", "1"])
    out, err = capsys.readouterr()
    assert code == 1, err
    data = json.loads(out)
    by_name = {Path(d["path"]).name: d for d in data}
    assert by_name["a_coffee.png"]["predictions"][0]["label"] == "espresso"
    assert "predictions" in by_name["z_cat.png"]
    reasons = {kind: by_name[path.name]["error"] for kind, path in bad.items()}
    assert "empty file" in reasons["empty"]
    assert "truncated" in reasons["truncated"]
    assert "not an image" in reasons["not_image"]
    assert "decompression-bomb" in reasons["bomb"]
    assert reasons["denied"] == "permission denied"
    for path in bad.values():
        assert f"pixelsift: {path}: " in err, "one line per failed input on stderr"
    assert "5 of 7 inputs failed" in err
    assert "Traceback" not in err


def test_paths_from_stdin_and_missing_inputs(samples: Path) -> None:
    result = run_cli(
        "classify",
        "-",
        "-k",
        "1",
        "--format",
        "csv",
        input=f"{samples / 'coffee.png'}\n{samples / 'missing.png'}\n",
    )
    assert result.returncode == 1
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["label"] == "espresso"
    assert rows[1]["error"] == "no such file or folder"


def test_missing_weights_is_a_clear_error_not_a_traceback(tmp_path: Path, samples: Path) -> None:
    result = run_cli(
        "classify", str(samples / "coffee.png"), "-m", "vgg16", env={"PIXELSIFT_HOME": str(tmp_path)}
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "weights for model 'vgg16' are missing" in result.stderr
    assert "vgg16-397923af.pth" in result.stderr and "pixelsift models fetch vgg16" in result.stderr


def test_usage_errors_exit_2(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(samples / "coffee.png"), "-m", "resnet5"]) == 2
    assert "did you mean" in capsys.readouterr().err.lower()
    assert main(["classify", str(samples / "coffee.png"), "-k", "0"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["classify", "--format", "xml", "x.jpg"])
    assert info.value.code == 2


def test_a_run_ends_with_one_summary_line_on_stderr_and_q_keeps_it_quiet(
    samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["classify", str(samples / "chelsea.png"), str(samples / "coffee.png"), "-f", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["path"].endswith("chelsea.png"), "stdout stays the results"
    (line,) = captured.err.splitlines()
    assert line.startswith("pixelsift: classified 2 inputs in ") and line.endswith(" s")
    assert main(["classify", str(samples / "chelsea.png"), "-q"]) == 0
    assert capsys.readouterr().err == "", "-q: nothing to say when nothing failed"


def test_a_mistyped_command_or_choice_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, suggestion in (
        (["clasify", "x.jpg"], "did you mean 'classify'?"),
        (["serach", "cat"], "did you mean 'search'?"),
        (["search", "cat", "--format", "jsn"], "did you mean 'json'?"),
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and suggestion in capsys.readouterr().err, argv
    with pytest.raises(SystemExit):
        main(["zzzz"])
    assert "did you mean" not in capsys.readouterr().err, "nothing close: no guess"


def test_models_list_table_and_json(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["name", "task", "source", "input", "embed", "top-1", "weights", "licence"]
    lite = next(line for line in out.splitlines() if line.startswith("efficientnet_lite0"))
    assert "packaged" in lite and "1280" in lite
    vgg = next(line for line in out.splitlines() if line.startswith("vgg16"))
    assert "missing" in vgg and "71.6" in vgg
    assert main(["models", "list", "dense*", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == ["densenet121", "densenet201"]
    assert records[0]["embed_dim"] == 1024 and records[0]["weights"] == "missing"
    assert records[0]["preprocessing"]["crop"] == 224


def test_models_info_is_a_table_by_default_and_json_on_request(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    assert main(["models", "info", "efficientnet_lite0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["field", "value"] and lines[1].split() == ["name", "efficientnet_lite0"]
    table = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines[1:]}
    assert table["embed_dim"] == "1280" and table["preprocessing"].startswith("resize 256; crop 224")
    assert main(["models", "info", "efficientnet_lite0", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["embed_dim"] == 1280 and record["preprocessing"]["crop"] == 224
    assert set(table) == set(record), "every field of the record in the table"


def test_models_fetch_offline_is_a_clear_error(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert main(["models", "fetch", "resnet18"]) == 1
    err = capsys.readouterr().err
    assert "PIXELSIFT_OFFLINE=1 forbids downloading" in err and "pixelsift models add resnet18" in err
    assert main(["models", "fetch", "efficientnet_lite0"]) == 0
    assert "already packaged" in capsys.readouterr().out


def test_console_script_version_and_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "classify" in result.stdout and "models" in result.stdout
    result = run_cli("classify", "--help")
    assert "examples:" in result.stdout and "--precision" in result.stdout


def test_bash_completion_completes_commands_and_option_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "pixelsift.bash"
    script.write_text(capsys.readouterr().out)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        code = (
            f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
            f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}; "
            '_shtab_pixelsift; echo "${COMPREPLY[@]}"'
        )
        done = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60)
        return done.stdout.split()

    assert complete("pixelsift", "cla") == ["classify"]
    assert complete("pixelsift", "dup") == ["duplicates"], "every command, the newest too"
    assert complete("pixelsift", "search", "cat", "--format", "") == ["table", "json", "jsonl", "csv"]
    assert main(["completion", "zsh"]) == 0 and "#compdef pixelsift" in capsys.readouterr().out


def test_jsonl_is_one_object_a_line_as_json_gives_them(
    samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(samples / "chelsea.png"), str(samples / "coffee.png")]
    assert main(["classify", *paths, "-k", "2", "--format", "json"]) == 0
    array = json.loads(capsys.readouterr().out)
    assert main(["classify", *paths, "-k", "2", "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == array and len(lines) == 2
