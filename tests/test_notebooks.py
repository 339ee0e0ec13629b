"""The notebooks: stored executed from their current sources, and executing from scratch."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import SHARED_DATA, shared_folder

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
sys.path.insert(0, str(NOTEBOOK_DIR))
import build  # noqa: E402  (notebooks/build.py)

NAMES = build.names()


def test_the_numbered_notebooks_exist_with_a_source_each() -> None:
    assert NAMES == [
        "01_quickstart", "02_matrix_factorization", "03_neural_cf", "04_content_and_cold_start",
        "05_export_and_serve", "06_music",
    ]  # fmt: skip
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_outputs_came_from_the_current_sources(name) -> None:
    """``make notebooks`` after editing a source; a stale or hand-edited notebook fails here."""
    committed = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    expected = build.cells_of(NOTEBOOK_DIR / "src" / f"{name}.py")
    assert [(c.cell_type, c.source) for c in committed.cells] == expected, f"{name}: run `make notebooks`"
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"{name}: a code cell was not executed"
            assert cell.metadata["tfrec"]["source_sha256"] == build.source_sha256(cell.source)
            assert not [o for o in cell.outputs if o.get("output_type") == "error"], f"{name}: an error output"
    images = sum("image/png" in o.get("data", {}) for c in committed.cells for o in c.get("outputs", []))
    assert images >= 1, f"{name} shows no plot"
    assert committed.metadata["tfrec"]["seconds"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_from_scratch(name, monkeypatch) -> None:
    shared_folder("ml-100k")
    shared_folder("lastfm-2k-audio")
    monkeypatch.setenv("TFREC_DATA_DIR", str(SHARED_DATA))  # the kernel inherits it: nothing downloads
    notebook = build.notebook_of(NOTEBOOK_DIR / "src" / f"{name}.py")
    start = time.perf_counter()
    build.execute(notebook)  # raises CellExecutionError naming the failing cell
    print(f"{name}: {time.perf_counter() - start:.0f} s")
    images = sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))
    assert images >= 1, f"{name} drew no plot"
