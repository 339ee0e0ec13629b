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


def test_the_report_fails_on_a_drift_beyond_noise_unless_it_is_explained(monkeypatch) -> None:
    import copy
    import json

    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # report.py imports its neighbours
    spec = importlib.util.spec_from_file_location("report", ROOT / "bench" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    before = json.loads((ROOT / "bench" / "results.json").read_text())["results"]
    assert report.drift(before, before, {}) == []
    after = copy.deepcopy(before)
    folds = after["mf_quality"]["ratings"]["biased_mf"]
    after["mf_quality"]["ratings"]["biased_mf"] = [[f[0] + 0.01, *f[1:]] for f in folds]  # within noise
    assert report.drift(before, after, {}) == []
    after["mf_quality"]["ratings"]["biased_mf"] = [[f[0] + 0.05, *f[1:]] for f in folds]
    ((what, old, new, why),) = report.drift(before, after, {})
    assert what.startswith("biased_mf mean RMSE") and why == "UNEXPLAINED"
    assert report.drift(before, after, {what: {"figure": new, "reason": "new default"}})[0][3] == "new default"
    # An explanation holds for the figure it names, not for a later one.
    assert report.drift(before, after, {what: {"figure": old, "reason": "stale"}})[0][3] == "UNEXPLAINED"
