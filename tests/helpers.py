"""Test helpers: generated images and a bad-input zoo."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


def write_image(
    path: Path,
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] = (200, 30, 30),
    mode: str = "RGB",
    fmt: str | None = None,
    seed: int = 0,
) -> Path:
    """A small noisy image (so JPEG encodes real content), written to `path`."""
    rng = np.random.default_rng(seed)
    arr = np.clip(rng.normal(0, 20, (size[1], size[0], 3)) + np.array(color), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def make_bad_inputs(folder: Path) -> dict[str, Path]:
    """One file of every kind of unreadable input, plus whether permission denial can be made real."""
    folder.mkdir(parents=True, exist_ok=True)
    bad: dict[str, Path] = {}
    bad["empty"] = folder / "b_empty.jpg"
    bad["empty"].write_bytes(b"")
    good = write_image(folder / "tmp_full.jpg", size=(200, 150))
    data = good.read_bytes()
    good.unlink()
    bad["truncated"] = folder / "c_truncated.jpg"
    bad["truncated"].write_bytes(data[: len(data) // 3])
    bad["not_image"] = folder / "d_notes.jpg"
    bad["not_image"].write_text("this is a text file with a .jpg name\n")
    # 20000 x 20000 one-bit PNG: 400 megapixels in a few kilobytes.
    bad["bomb"] = folder / "e_bomb.png"
    Image.new("1", (20000, 20000)).save(bad["bomb"])
    bad["denied"] = folder / "f_denied.jpg"
    write_image(bad["denied"])
    os.chmod(bad["denied"], 0)
    return bad


@contextlib.contextmanager
def as_unprivileged_user() -> Iterator[None]:
    """Root reads files whatever their mode; act as `nobody` so a chmod 000 file is really unreadable."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@contextlib.contextmanager
def shared_tmp_dir() -> Iterator[Path]:
    """A temporary folder that another user can enter (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="pixelsift-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in path.rglob("*"):
            with contextlib.suppress(OSError):
                child.chmod(0o755 if child.is_dir() else 0o644)
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def pixelsift_home(home: Path) -> Iterator[Path]:
    """PIXELSIFT_HOME set to `home` for the block (for fixtures wider than a test), then restored."""
    saved = os.environ.get("PIXELSIFT_HOME")
    os.environ["PIXELSIFT_HOME"] = str(home)
    try:
        yield home
    finally:
        if saved is None:
            os.environ.pop("PIXELSIFT_HOME", None)
        else:
            os.environ["PIXELSIFT_HOME"] = saved


def run_cli(
    *args: str, input: str | None = None, env: dict[str, str | None] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pixelsift ARGS` in a subprocess (the real entry point, exit code and streams);
    `env` adds variables, and removes those it gives as None."""
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pixelsift", *args],
        input=input,
        capture_output=True,
        text=True,
        env={k: v for k, v in merged.items() if v is not None},
        cwd=cwd or REPO,
        timeout=600,
    )


# COCO ids (YOLO's 0-79 numbering) the colour segmenter reports: red shapes are "dog", blue ones "car".
COLOUR_CLASSES = {"dog": (0, 16), "car": (2, 2)}  # name -> (RGB channel that dominates, class id)


def colour_segmenter_network(n_classes: int = 80, n_protos: int = 32):  # type: ignore[no-untyped-def]
    """A fixed torch network with YOLO-seg's outputs whose answer is known: one object per dominant
    colour (red -> dog, blue -> car), its box the colour's extent and its mask the colour's pixels.

    Input (B, 3, H, W) in [0, 1]; outputs (predictions (B, 4 + classes + protos, anchors), prototype
    masks (B, protos, H/4, W/4)), as ultralytics' Segment head in eval mode. Everything after it
    (letterbox, selection, NMS, assembling masks from prototypes, cutting the padding, scaling to the
    photo, RLE) is pixelsift's real code path.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ColourSegmenter(nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            batch, _, height, width = x.shape
            preds = torch.zeros(batch, 4 + n_classes + n_protos, len(COLOUR_CLASSES))
            protos = torch.zeros(batch, n_protos, height // 4, width // 4)
            for anchor, (channel, class_id) in enumerate(COLOUR_CLASSES.values()):
                others = [c for c in range(3) if c != channel]
                inside = (x[:, channel] - torch.maximum(x[:, others[0]], x[:, others[1]])) > 0.3
                share = F.avg_pool2d(inside.float()[:, None], 4)[:, 0]
                protos[:, anchor] = (share - 0.5) * 20  # logits: > 0 where most of a 4x4 cell is inside
                rows, cols = inside.any(dim=2), inside.any(dim=1)
                for b in range(batch):
                    if not rows[b].any():
                        continue
                    ys, xs = torch.nonzero(rows[b])[:, 0], torch.nonzero(cols[b])[:, 0]
                    x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
                    preds[b, :4, anchor] = torch.stack(
                        [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
                    ).float()
                    preds[b, 4 + class_id, anchor] = 0.9
                    preds[b, 4 + n_classes + anchor, anchor] = 1.0
            return preds, protos

    return ColourSegmenter().eval()


def colour_segmenter(**kwargs):  # type: ignore[no-untyped-def]
    """pixelsift's YOLO-seg segmenter (`YoloSegmenter`) running `colour_segmenter_network`."""
    from pixelsift.detect.backends.yolo import YoloSegmenter
    from pixelsift.models.registry import get_model_spec
    from pixelsift.runtime.options import RunOptions
    from pixelsift.runtime.torch_runner import ModelRunner

    options = kwargs.pop("run_options", None) or RunOptions()
    runner = ModelRunner(colour_segmenter_network(), options, fold_bn=False)
    spec = get_model_spec("yolov8n-seg")
    return YoloSegmenter(spec, runner, kwargs.pop("imgsz", 640), 32, run_options=options, **kwargs)


def shapes_photo(
    width: int = 900, height: int = 600, seed: int = 0
) -> tuple[Image.Image, dict[str, np.ndarray]]:
    """A generated photo of a red disc and a blue rotated square on a textured background, and the
    true mask of each ("dog": the red disc, "car": the blue square)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.integers(90, 140, size=(height, width, 1)).repeat(3, axis=2).astype(np.uint8)
    cx, cy, r = width * 0.3, height * 0.55, min(width, height) * 0.25
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    sx, sy, half = width * 0.72, height * 0.4, min(width, height) * 0.18
    u, v = (xx - sx + yy - sy) / np.sqrt(2), (xx - sx - (yy - sy)) / np.sqrt(2)
    square = (np.abs(u) <= half) & (np.abs(v) <= half) & ~disc
    pixels = base.copy()
    pixels[disc] = (210, 40, 30)
    pixels[square] = (30, 50, 200)
    return Image.fromarray(pixels), {"dog": disc, "car": square}


def padded_job(real: Path, out: Path, extra: int, shard_rows: int = 2000) -> Path:
    """The real job's rows among `extra` generated rows of random vectors (other photos' hashes), in
    shards of `shard_rows`: a job far bigger than the library."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pixelsift.batch.output import write_job_file, write_shard

    table = pa.concat_tables(pq.read_table(p) for p in sorted(real.glob("part-*.parquet")))
    dim = table.schema.field("vector").type.list_size
    rng = np.random.default_rng(0)
    out.mkdir()
    for shard, start in enumerate(range(0, extra, shard_rows)):
        n = min(shard_rows, extra - start)
        vectors = rng.random((n, dim), dtype=np.float32)
        columns = {
            "path": [f"other/{start + i:07d}.jpg" for i in range(n)],
            "size": [1000] * n,
            "mtime_ns": [0] * n,
            "sha256": [f"{start + i:064x}" for i in range(n)],
            "width": [640] * n,
            "height": [480] * n,
            "error": [None] * n,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
            "norm": [1.0] * n,
            "labels": [["x"]] * n,
            "scores": [[0.5]] * n,
            "scene": [None] * n,  # the scene regions: none known for made-up rows
        }
        part = pa.Table.from_arrays(
            [
                c if isinstance(c, pa.Array) else pa.array(c, f.type)
                for c, f in zip(columns.values(), table.schema, strict=True)
            ],
            schema=table.schema,
        )
        if shard == extra // shard_rows // 2:  # the real rows in the middle of the job
            part = pa.concat_tables([part, table])
        write_shard(out, shard, part)
    record = json.loads((real / "_job.json").read_text())
    write_job_file(out, record)
    return out


def text_font(size: int):  # type: ignore[no-untyped-def]
    """A scalable font: DejaVu Sans Bold where Debian has it, else Pillow's own."""
    from PIL import ImageFont

    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    return ImageFont.truetype(str(dejavu), size) if dejavu.exists() else ImageFont.load_default(size)


def text_photo(
    lines: list[str],
    size: tuple[int, int] = (900, 600),
    angle: int = 0,
    blur: float = 0.0,
    background: Path | None = None,
    font_size: int = 56,
) -> Image.Image:
    """A made photo with `lines` of dark text on a pale sign, on a green field or on `background`
    (a real photo), turned `angle` degrees counter-clockwise and blurred by `blur` pixels."""
    from PIL import ImageDraw, ImageFilter

    if background is not None:
        img = Image.open(background).convert("RGB").resize(size)
    else:
        img = Image.new("RGB", size, (80, 130, 60))
    draw = ImageDraw.Draw(img)
    font = text_font(font_size)
    step = int(font_size * 1.6)
    top = size[1] // 2 - step * len(lines) // 2
    draw.rectangle(
        (size[0] // 10, top - 20, size[0] * 9 // 10, top + step * len(lines) + 10), fill=(240, 238, 228)
    )
    for i, line in enumerate(lines):
        draw.text((size[0] // 10 + 30, top + i * step), line, fill=(20, 20, 20), font=font)
    if angle:
        img = img.rotate(angle, expand=True, fillcolor=(80, 130, 60))
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return img


def indexed_without_detection(root: Path) -> Path:
    """`root`'s photos indexed (classifier only, `detector="none"`) into `index.db` beside the folder."""
    from pixelsift import PhotoIndex

    db = root.parent / "index.db"
    with PhotoIndex(db) as index:
        index.update(root, detector="none")
    return db
