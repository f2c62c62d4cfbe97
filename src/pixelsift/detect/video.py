"""Video files: sampled frames in, an annotated video and per-frame JSON lines out (OpenCV's VideoCapture).

Frames stream one at a time (constant memory); with `vid_stride=N` only every N-th frame is decoded
and detected, and the annotated video plays at the source frame rate divided by N.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

from pixelsift.core.optional import import_cv2
from pixelsift.errors import ImageError, UsageError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


def is_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def video_info(path: str | os.PathLike[str]) -> tuple[float, int]:
    """(frames per second, frame count) as the container states them (0 when it does not)."""
    cv2 = import_cv2()
    capture = cv2.VideoCapture(str(path))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS) or 0.0), int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()


def iter_frames(path: str | os.PathLike[str], vid_stride: int = 1) -> Iterator[tuple[int, Image.Image]]:
    """(frame index, RGB frame) for frames 0, N, 2N ...; skipped frames are grabbed, not decoded."""
    if vid_stride < 1:
        raise UsageError("--vid-stride must be at least 1")
    cv2 = import_cv2()
    if not os.path.isfile(path):
        raise ImageError(os.fspath(path), "no such file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ImageError(os.fspath(path), "not a video OpenCV can read")
        index, produced = 0, 0
        while capture.grab():
            if index % vid_stride == 0:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                produced += 1
                yield index, Image.fromarray(np.ascontiguousarray(frame[..., ::-1]))
            index += 1
        if produced == 0:
            raise ImageError(os.fspath(path), "no frames could be decoded from this video")
    finally:
        capture.release()


class AnnotatedVideo:
    """Writes RGB frames to an .mp4 (mp4v), opened on the first frame to learn the size."""

    def __init__(self, path: Path, fps: float):
        self.path = path
        self.fps = fps if fps > 0 else 25.0
        self.frames = 0
        self._writer: Any = None

    def write(self, frame: Image.Image) -> None:
        cv2 = import_cv2()
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, frame.size)
            if not self._writer.isOpened():
                raise UsageError(f"cannot write a video to {self.path}")
        self._writer.write(np.ascontiguousarray(np.asarray(frame.convert("RGB"))[..., ::-1]))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> AnnotatedVideo:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
