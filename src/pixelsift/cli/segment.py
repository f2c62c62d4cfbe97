"""`pixelsift segment`: `pixelsift detect` with an instance segmenter (`cli.detect` holds both)."""

from __future__ import annotations

import argparse

from pixelsift.cli.detect import SEGMENT, add_task_parser


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    add_task_parser(subparsers, SEGMENT)
