"""The notebooks: stored executed from their current sources, and executing from scratch."""

from __future__ import annotations

import re
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
        "05_export_and_serve", "06_music", "07_sequences",
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


# The shapes of TensorFlow's C++ log lines and start-up notices ("I0000 00:00:17...
# cpu_feature_guard.cc:...]", "failed call to cuInit", oneDNN / TF-TRT notices).
TF_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \w+\.cc:\d+\]|cuInit|oneDNN custom operations|TF-TRT", re.M)


@pytest.mark.parametrize("name", NAMES)
def test_committed_outputs_hold_no_tensorflow_log_lines(name) -> None:
    committed = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    texts = ["".join(o.get("text", "")) for c in committed.cells for o in c.get("outputs", [])]
    found = [m.group(0) for text in texts for m in TF_LOG.finditer(text)]
    assert found == [], f"{name}: TensorFlow log lines in the stored outputs: {found[:3]}"


def test_the_music_notebooks_verdict_is_the_benchmarks() -> None:
    """Notebook 06 reproduces bench/music.py's warm comparison (same split, seed and chosen
    settings): its printed difference, interval and verdict are the benchmark's."""
    committed = nbformat.read(NOTEBOOK_DIR / "06_music.ipynb", as_version=4)
    texts = "".join("".join(o.get("text", "")) for c in committed.cells for o in c.get("outputs", []))
    ours = re.search(r"audio \+ history minus ids only: ([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\] -> (\w+)", texts)
    bench = (NOTEBOOK_DIR.parent / "bench" / "results" / "music.md").read_text()
    theirs = re.search(r"^\| 1-\d+ \| \d+ \| recall@10 \| [\d.]+ \| [\d.]+ \| ([+-][\d.]+) \| "
                       r"\[([+-][\d.]+), ([+-][\d.]+)\] \| (\w+) \|$", bench, re.M)  # fmt: skip
    assert ours and theirs, "the notebook or bench/results/music.md no longer states the warm comparison"
    assert ours.group(4) == theirs.group(4), (ours.group(0), theirs.group(0))
    for a, b in zip(ours.groups()[:3], theirs.groups()[:3]):
        assert abs(float(a) - float(b)) <= 0.002, (ours.group(0), theirs.group(0))
    text = "".join(c.source for c in committed.cells if c.cell_type == "markdown")
    if theirs.group(4) == "worse":
        assert "does not beat the id-only two-tower" in text
