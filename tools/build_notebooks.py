"""Build notebooks/*.ipynb from their sources, notebooks/src/*.py (jupytext's "percent" format: `# %%`
starts a code cell, `# %% [markdown]` a text cell whose lines start with "# "). The .py files are what
people edit and review; the notebooks are stored without outputs. `make notebooks` runs this; a test
checks that the committed notebooks match their sources.

    python tools/build_notebooks.py            # write notebooks/*.ipynb
    python tools/build_notebooks.py --check    # exit 1 when a notebook differs from its source
    python tools/build_notebooks.py --render docs/notebooks   # run them, keep the outputs there
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "notebooks"


def cells_of(source: str) -> list[dict]:
    cells: list[dict] = []
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines()
            )
            cells.append({"cell_type": "markdown", "metadata": {}, "source": text.splitlines(keepends=True)})
        else:
            cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": text.splitlines(keepends=True),
                }
            )

    for line in source.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def notebook_of(source: str) -> str:
    notebook = {
        "cells": cells_of(source),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, cell in enumerate(notebook["cells"]):
        cell["id"] = f"cell-{i}"
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def render(folder: Path) -> None:
    """Execute every notebook (offline) and write it with its outputs, figures included, to `folder`."""
    import os

    import nbclient
    import nbformat

    os.environ.setdefault("PIXELSIFT_OFFLINE", "1")
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(ROOT.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
        nbformat.write(notebook, folder / path.name)
        print(f"{folder / path.name}: {(folder / path.name).stat().st_size // 1024} KB")


def main() -> int:
    if "--render" in sys.argv[1:]:
        render(Path(sys.argv[sys.argv.index("--render") + 1]))
        return 0
    check = "--check" in sys.argv[1:]
    stale = []
    for src in sorted((ROOT / "src").glob("*.py")):
        target = ROOT / f"{src.stem}.ipynb"
        text = notebook_of(src.read_text())
        if check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        else:
            target.write_text(text)
    if stale:
        print(f"out of date with notebooks/src: {', '.join(stale)}; run `make notebooks`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
