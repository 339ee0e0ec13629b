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
