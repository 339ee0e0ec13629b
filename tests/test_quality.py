"""The CI quality tier: real-data figures must stay within a stated margin of the
committed benchmark results (bench/results/*.json), so a quality regression fails CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tfrec
from tfrec.data import split
from tfrec.training import train

pytestmark = [pytest.mark.slow, pytest.mark.quality]
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
# Margins: about twice the seed-to-seed spread of each figure (RMSE on u1 moves by ~0.003
# between seeds; Recall@10 over ML-100K's 943 users has a standard error of ~0.011).
RMSE_MARGIN, RECALL_MARGIN = 0.01, 0.02


def committed(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def test_biased_mf_rmse_on_ml100k_u1_holds(ml100k) -> None:
    parts = split(ml100k, "fold:u1", seed=0)
    model = train("biased_mf", parts.train, seed=0, verbose=0).model
    rmse = tfrec.evaluate(model, parts.train, parts.test)["rmse"]
    want = committed("mf_quality")["ratings"]["biased_mf"][0][0]  # fold u1: (rmse, mae, seconds)
    assert rmse <= want + RMSE_MARGIN, f"biased_mf u1 RMSE {rmse:.4f}, committed {want:.4f}"


@pytest.mark.parametrize("name", ["implicit_mf", "two_tower"])
def test_leave_last_out_recall_on_ml100k_holds(ml100k, name) -> None:
    parts = split(ml100k, "leave-last-out", seed=0)
    model = train(name, parts.train, seed=0, verbose=0).model
    recall = tfrec.evaluate(model, parts.train, parts.test, k=[10], protocol="full")["recall@10"]
    want = committed("ncf_quality")["results"]["ml-100k"][name]["recall@10"]
    assert recall >= want - RECALL_MARGIN, f"{name} R@10 {recall:.4f}, committed {want:.4f}"
