"""bench/run.py's choice of sections to rerun, and report.py's staleness and drift rules
that it relies on (against this repository's own history)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # the scripts import their neighbours
    modules = {}
    for name in ("report", "run"):
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modules[name])
    return modules


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_a_section_is_current_only_when_its_code_is_unchanged_since_its_commit(bench) -> None:
    report = bench["report"]
    if _git("status", "--porcelain", "--", "tfrec", "bench/*.py"):
        pytest.skip("the working tree's tfrec/ or bench/ scripts differ from HEAD")
    head, root = _git("rev-parse", "--short", "HEAD"), _git("rev-list", "--max-parents=0", "HEAD").split()[0]
    assert report.current("mf_quality", head, {}) is True
    assert report.current("mf_quality", head + "+changes", {}) is False  # ran on uncommitted code
    assert report.current("mf_quality", root[:7], {}) is False  # tfrec/ has changed since the first commit


def test_run_reruns_a_section_with_no_results(bench, monkeypatch, tmp_path) -> None:
    run = bench["run"]
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    assert all(run.stale(name) for name in run.SCRIPTS)  # nothing written yet


def test_the_scaling_ratio_drifts_as_a_timing_figure(bench) -> None:
    report = bench["report"]

    def scaling(per_example_large: float) -> dict:
        models = {"implicit_mf": {"second_epoch_s": 1.0}, "two_tower": {"second_epoch_s": 1.0}}
        small = {"train_examples": 1_000_000, "models": models}
        large = {"train_examples": 1_000_000, "models": {m: {"second_epoch_s": per_example_large} for m in models}}
        return {"scaling": {"results": {"1000000": small, "10000000": large}}}

    assert report.drift(scaling(1.09), scaling(0.95), {}) == []  # 13%: timing noise
    moved = report.drift(scaling(1.09), scaling(0.70), {})  # 36%
    assert len(moved) == 2 and all(row[3] == "UNEXPLAINED" for row in moved)


def test_run_reruns_only_the_stale_models_of_the_defaults_section(bench, monkeypatch, tmp_path) -> None:
    import json

    run = bench["run"]
    if _git("status", "--porcelain", "--", "tfrec", "bench/*.py"):
        pytest.skip("the working tree's tfrec/ or bench/ scripts differ from HEAD")
    head, root = _git("rev-parse", "--short", "HEAD"), _git("rev-list", "--max-parents=0", "HEAD").split()[0][:7]
    monkeypatch.setattr(run, "RESULTS", tmp_path)

    def write(commits: dict) -> None:
        entries = {model: {"commit": commit} for model, commit in commits.items()}
        (tmp_path / "defaults.json").write_text(json.dumps({"machine": {"commit": head}, "results": entries}))

    write({"biased_mf": root, "gmf": head, "neumf": root})
    assert run.arguments("defaults", only_stale=True) == ["--models", "biased_mf,neumf", "--update"]
    assert run.arguments("defaults", only_stale=False) == []  # make bench reruns every model
    write({"biased_mf": root, "gmf": root})
    assert run.arguments("defaults", only_stale=True) == []  # all stale: the whole script
    assert run.arguments("ials_quality", only_stale=True) == ["--large"]


def test_sequence_sections_run_their_script_per_dataset_and_judge_ties_as_missed(bench) -> None:
    run, report = bench["run"], bench["report"]
    assert report.script("sequences_ml_latest_small") == "sequences" and report.script("mf_quality") == "mf_quality"
    assert run.arguments("sequences_ml_latest_small", only_stale=False) == ["--dataset", "movielens-latest-small"]
    section = {
        "comparisons": [["sasrec - item_transitions", 0.0148, "[-0.0095, +0.0403]", "tie"],
                        ["sasrec - ials", 0.0541, "[+0.0254, +0.0827]", "better"],
                        ["sasrec - gru4rec", -0.01, "[-0.03, +0.01]", "tie"]],
        "ratio_to_order_blind": 1.38, "serving_ratio": 0.9, "models": {"sasrec": {"train_seconds": 55.0}},
    }  # fmt: skip
    rows = {what: verdict for what, _, verdict, _ in report._targets({"sequences_ml_100k": section})}
    assert rows["ML-100K leave-last-out: sasrec better than item_transitions (R@10, 95% paired interval)"] == "MISSED"
    assert rows["ML-100K leave-last-out: sasrec better than ials (R@10, 95% paired interval)"] == "met"
    assert not any("gru4rec" in what for what in rows)  # a sequence peer, not a target
    assert rows["ML-100K: sasrec R@10 >= 1.5x the best order-blind tfrec model"] == "MISSED"
    assert rows["ML-100K: recommend_from_history p50 <= 1.5x recommend's (batch 1)"] == "met"
    assert rows["ML-100K: sasrec trains to its chosen quality in <= 60 s"] == "met"
