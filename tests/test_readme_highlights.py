"""The README's benchmark highlights are what bench/report.py generates from the
committed bench/results (no figure there is copied by hand)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_highlights_are_generated_from_the_committed_results() -> None:
    spec = importlib.util.spec_from_file_location("highlights", ROOT / "bench" / "highlights.py")
    highlights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(highlights)
    generated = highlights.table(highlights.load(ROOT / "bench" / "results"))
    readme = (ROOT / "README.md").read_text()
    assert highlights.with_table(readme, generated) == readme, "run `python bench/report.py` (make bench)"
    assert generated.count("\n") >= 10 and "not run" not in generated
