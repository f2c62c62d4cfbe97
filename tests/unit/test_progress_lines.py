"""A line written while a progress bar is on show (a bad photo's error, a warning) lands on a line of
its own above the bar, never in the middle of the bar's line."""

from __future__ import annotations

import logging

import pytest

from pixelsift.cli import _setup_logging
from pixelsift.cli.output import error_line
from pixelsift.core.progress import progress_bar, write_line


def test_an_error_line_clears_the_bar_and_the_bar_comes_back_below(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar(total=3, desc="classify", enabled=True) as bar:
        bar.update(1)
        error_line("b.jpg", "not an image")
        bar.update(2)
    err = capsys.readouterr().err
    before, line, after = err.partition("pixelsift: b.jpg: not an image\n")
    assert line, err
    cleared = before.split("\r")
    assert cleared[-1] == "" and cleared[-2].strip() == "", "the bar's line was blanked first"
    assert "classify" in after and "3/3" in after, "the bar is drawn again below"


def test_a_warning_while_a_bar_is_on_show_is_a_line_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    _setup_logging(0)
    with progress_bar(total=2, desc="index", enabled=True) as bar:
        bar.update(1)
        logging.getLogger("pixelsift").warning("a%sb.jpg: skipped", "\x1b")  # escaped, as ever
        bar.update(1)
    err = capsys.readouterr().err
    assert "\rpixelsift: a\\x1bb.jpg: skipped\n" in err, err


def test_without_a_bar_a_line_is_just_printed(capsys: pytest.CaptureFixture[str]) -> None:
    write_line("pixelsift: note")
    assert capsys.readouterr().err == "pixelsift: note\n"
