"""tfrec tune: a search on the validation part of the training split, resumable, whose
best config tfrec train accepts."""

from __future__ import annotations

import json

import tfrec
from tfrec.cli import main
from tfrec.data import split
from tfrec.tuning import search_space, tune


def test_the_search_space_is_the_configs_fields_less_the_fixed_ones() -> None:
    space = search_space("implicit_mf", {"epochs": 1})
    assert {"learning_rate", "embedding_dim", "temperature", "l2"} <= set(space) and "epochs" not in space
    assert search_space("bayesian_mf")["epochs"] == ("int", 200, 800)  # half to twice the default
    assert "loss" not in space  # a choice of objective is not searched


def test_tune_scores_trials_on_validation_and_resumes(small, tmp_path) -> None:
    parts = split(small, "leave-last-out", seed=0)
    study = tmp_path / "study.db"
    first = tune("implicit_mf", parts.train, trials=3, storage=study, epochs=1)
    assert first.monitor == "val_recall@10" and len(first.trials) == 3
    assert 0.0 <= first.best_value <= 1.0 and first.best_config["epochs"] == 1
    assert tfrec.models.make_config("implicit_mf", **first.best_overrides).epochs == 1
    again = tune("implicit_mf", parts.train, trials=1, storage=study, epochs=1)
    assert len(again.trials) == 4 and again.best_value >= first.best_value


def test_cli_tune_writes_a_config_that_train_accepts(tmp_path, capsys) -> None:
    out = tmp_path / "tune"
    assert main(["tune", "biased_mf", "--trials", "2", "--set", "epochs=1", "--output", str(out)]) == 0
    best = json.loads((out / "best_config.json").read_text())
    assert best["model"] == "biased_mf" and best["monitor"] == "val_rmse" and best["config"]["epochs"] == 1
    assert "the test part is not used" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", "biased_mf", "--config", str(out / "best_config.json"), "--output", str(run), "--quiet"]) == 0
    report = json.loads((run / "metrics.json").read_text())
    assert {k: v for k, v in report["config"].items() if k != "seed"} == best["config"]
    assert main(["train", "implicit_mf", "--config", str(out / "best_config.json"), "--output", str(run)]) == 2
    assert "is for 'biased_mf', not 'implicit_mf'" in capsys.readouterr().err
