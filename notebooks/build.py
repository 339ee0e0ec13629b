"""Builds the numbered notebooks from their sources in notebooks/src/ and stores them executed.

Each source is a Python file in "percent" form: ``# %% [markdown]`` starts a markdown cell
(its lines prefixed by ``# ``), ``# %%`` a code cell. The build executes every notebook top
to bottom in a fresh kernel (working directory: notebooks/), then records in each code
cell's metadata the sha256 of the source it ran (``tfrec.source_sha256``) and in the
notebook's metadata the execution time, so a test can check that the committed outputs
came from the current sources.

Datasets are read the way a user's machine reads them (``tfrec.datasets.load(...,
download=True)``): from ``$TFREC_DATA_DIR`` when set, else downloaded into
``~/.tfrec/datasets``.

Usage: python notebooks/build.py [NAME ...]   (``make notebooks``: every notebook)
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def source_sha256(source: str) -> str:
    """The hash a built code cell records of the source it executed."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def cells_of(path: Path) -> list[tuple[str, str]]:
    """``(kind, source)`` of each cell of a percent-form source file."""
    cells: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        text = "\n".join(lines).strip("\n")
        if text:
            out.append((kind, text))
    return out


def notebook_of(path: Path) -> nbformat.NotebookNode:
    """The unexecuted notebook of a source file."""
    cells = [new_markdown_cell(s) if kind == "markdown" else new_code_cell(s) for kind, s in cells_of(path)]
    return new_notebook(cells=cells, metadata={"kernelspec": KERNEL})


def execute(notebook: nbformat.NotebookNode, timeout: int = 900) -> float:
    """Runs ``notebook`` in place in a fresh kernel (cwd notebooks/); returns the seconds it took."""
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    return time.perf_counter() - start


def build(name: str) -> Path:
    """Executes notebook ``name`` from its source and writes ``notebooks/<name>.ipynb``."""
    notebook = notebook_of(SOURCES / f"{name}.py")
    seconds = execute(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.metadata["tfrec"] = {"source_sha256": source_sha256(cell.source)}
    notebook.metadata["tfrec"] = {"seconds": round(seconds, 1)}
    target = HERE / f"{name}.ipynb"
    nbformat.write(notebook, target)
    print(f"wrote {target} ({seconds:.0f} s)")
    return target


def names() -> list[str]:
    """The notebooks, in order."""
    return sorted(p.stem for p in SOURCES.glob("[0-9][0-9]_*.py"))


def main() -> None:
    for name in sys.argv[1:] or names():
        build(name)


if __name__ == "__main__":
    main()
