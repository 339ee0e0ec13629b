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
    before = {"mf_quality": {"pooled": {"biased_mf": {"rmse": 0.9040, "low": 0.9010, "high": 0.9070}}}}
    after = copy.deepcopy(before)
    after["mf_quality"]["pooled"]["biased_mf"] = {"rmse": 0.9140, "low": 0.9110, "high": 0.9170}  # within noise
    assert report.drift(before, after, {}) == []
    after["mf_quality"]["pooled"]["biased_mf"] = {"rmse": 0.9540, "low": 0.9510, "high": 0.9570}
    moved = report.drift(before, after, {})  # its own target and "best factorization model"
    ((what, old, new, why),) = [row for row in moved if row[0].startswith("biased_mf RMSE u1..u5 pooled")]
    assert len(moved) == 2 and why == "UNEXPLAINED"
    reasons = {row[0]: row[3] for row in report.drift(before, after, {what: {"figure": new, "reason": "new default"}})}
    assert reasons[what] == "new default"
    # An explanation holds for the figure it names, not for a later one.
    reasons = {row[0]: row[3] for row in report.drift(before, after, {what: {"figure": old, "reason": "stale"}})}
    assert reasons[what] == "UNEXPLAINED"


def test_a_target_is_met_only_when_its_interval_clears_the_bar(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("report", ROOT / "bench" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)

    def verdict(high: float) -> str:
        results = {"mf_quality": {"pooled": {"biased_mf": {"rmse": 0.9040, "low": 0.9010, "high": high}}}}
        rows = {what: v for what, _, v, _ in report._targets(results)}
        return rows["biased_mf RMSE u1..u5 pooled <= 0.905 (95% interval over ratings)"]

    assert verdict(0.9049) == "met" and verdict(0.9051) == "MISSED"  # the point estimate clears it either way
