"""Memory bombs below the pixel limit: thin images and tiny files that decode to gigabytes are either
processed in bounded memory or refused before decoding, in the CLI's code path and in the web app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers import REPO

# Peak memory any single input may add on top of a loaded model (the README states it).
BOUND_MB = 256


def bombs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "wide": folder / "wide.png",  # 8000 x 1: resized naively, 2,048,000 x 256 x 3 bytes
        "tall": folder / "tall.png",  # 1 x 20000
        "bits": folder / "bits.png",  # 13000 x 13000 one-bit: 20 KB on disk, 169 MB as mode "1"
    }
    Image.new("RGB", (8000, 1), (200, 30, 30)).save(made["wide"])
    Image.new("RGB", (1, 20000), (30, 200, 30)).save(made["tall"])
    Image.new("1", (13000, 13000)).save(made["bits"])
    return made


MEASURE = r"""
import json, resource, sys
{setup}
def rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20
warm(sys.argv[1])  # the model loaded and one ordinary photo through it
base = rss_mb()
out = {{}}
for path in sys.argv[2:]:
    out[path] = run(path)
print(json.dumps({{"base": base, "peak": rss_mb(), "results": out}}))
"""

CLASSIFY = """
from pixelsift.runtime.classify import Classifier
classifier = Classifier()
def warm(path): list(classifier.iter_classify([path]))
def run(path):
    (result,) = classifier.iter_classify([path])
    return {"ok": result.ok, "error": result.error, "top": result.labels[:1]}
"""

WEB = """
from fastapi.testclient import TestClient
from pixelsift.web import WebConfig, create_app
client = TestClient(base_url='http://127.0.0.1', app=create_app(WebConfig()))
def post(path):
    with open(path, "rb") as fh:
        return client.post("/api/classify", files={"file": (path, fh.read(), "image/png")})
def warm(path): assert post(path).status_code == 200
def run(path):
    response = post(path)
    return {"status": response.status_code, "body": response.json()}
"""


def measure(setup: str, normal: Path, inputs: list[Path]) -> dict:
    script = MEASURE.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", script, str(normal), *map(str, inputs)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_classify_keeps_each_bomb_within_the_bound(tmp_path: Path, samples: Path) -> None:
    made = bombs(tmp_path)
    got = measure(CLASSIFY, samples / "chelsea.png", list(made.values()))
    results = {Path(k).stem: v for k, v in got["results"].items()}
    assert results["wide"]["ok"] and results["tall"]["ok"]  # thin images are classified, not refused
    assert not results["bits"]["ok"] and "PIXELSIFT_MAX_DECODE_MB" in results["bits"]["error"]
    assert got["peak"] - got["base"] < BOUND_MB, got


@pytest.mark.slow
def test_the_web_app_refuses_or_bounds_each_bomb(tmp_path: Path, samples: Path) -> None:
    made = bombs(tmp_path)
    got = measure(WEB, samples / "chelsea.png", list(made.values()))
    results = {Path(k).stem: v for k, v in got["results"].items()}
    assert results["wide"]["status"] == 200 and results["tall"]["status"] == 200
    assert results["bits"]["status"] == 413, results["bits"]
    assert got["peak"] - got["base"] < BOUND_MB, got
