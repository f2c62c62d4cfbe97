"""The tutorial notebooks run top to bottom, offline, and their own assert cells hold (they check the
facts each notebook teaches); the committed notebooks are built from notebooks/src/*.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_the_notebooks_match_their_sources() -> None:
    done = subprocess.run(
        [sys.executable, "tools/build_notebooks.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert len(NOTEBOOKS) == 4


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_and_its_checks_hold(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "stored without outputs"
    )
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()  # a cell that raises (a failed assert included) fails here, naming the cell
    print(f"{path.name}: {time.perf_counter() - start:.0f} s")
    images = sum(
        1 for cell in notebook.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})
    )
    assert images >= 1, "the notebook draws its figures"
