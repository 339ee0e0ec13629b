"""The CLI contract: exact command names, metrics.json, one-line errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import tfrec
from tfrec.cli import main


def test_models_lists_registered_names(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == tfrec.models.names() and "rating" in out


def test_datasets_lists_names_and_places(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TFREC_DATA_DIR", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("synthetic", "movielens-100k", "movielens-1m", "movielens-latest-small",
                 "movielens-20m", "movielens-25m", "citeulike-t", "goodbooks-10k"):  # fmt: skip
        assert f"\n{name} " in out
    assert str(tmp_path / "ml-100k") in out


def test_train_end_to_end_on_synthetic(tmp_path, capsys) -> None:
    out_dir = tmp_path / "run"
    code = main(["train", "biased_mf", "--epochs", "2", "--batch-size", "512", "--seed", "3",
                 "--set", "embedding_dim=16", "--output", str(out_dir), "--quiet"])  # fmt: skip
    assert code == 0
    report = json.loads((out_dir / "metrics.json").read_text())
    assert set(report) == {"model", "dataset", "split", "protocol", "config", "metrics", "train_seconds",
                           "train_examples_per_second", "epochs_run", "model_path", "baseline"}  # fmt: skip
    assert report["protocol"] == "none"  # a rating model reports top-K only when asked
    assert report["baseline"]["name"].startswith("global mean rating ")
    assert set(report["baseline"]["metrics"]) == {"rmse", "mae"} == set(report["metrics"])
    assert report["model"] == "biased_mf" and report["dataset"] == "synthetic"
    assert report["split"] == "random:0.2"
    assert report["config"]["embedding_dim"] == 16 and report["config"]["epochs"] == 2
    assert report["config"]["batch_size"] == 512 and report["config"]["seed"] == 3
    assert 0.3 < report["metrics"]["rmse"] < 1.2 and report["metrics"]["mae"] < report["metrics"]["rmse"]
    assert report["train_seconds"] > 0 and report["train_examples_per_second"] > 0
    assert "rmse" in capsys.readouterr().out


def test_train_retrieval_model_with_sampled_protocol(tmp_path) -> None:
    code = main(["train", "implicit_mf", "--epochs", "1", "--protocol", "sampled:50", "--k", "5,10",
                 "--output", str(tmp_path), "--quiet"])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["split"] == "leave-last-out" and report["protocol"] == "sampled:50"
    assert {"hit_rate@5", "ndcg@10", "mrr"} <= set(report["metrics"]) and "rmse" not in report["metrics"]
    assert "coverage@10" not in report["metrics"]


def test_train_with_a_validation_part_records_its_metrics(tmp_path, capsys) -> None:
    code = main(["train", "implicit_mf", "--dataset", "synthetic", "--validation", "leave-last-out",
                 "--epochs", "2", "--output", str(tmp_path), "--quiet", "--k", "10"])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["validation"]["split"] == "leave-last-out"
    assert 0 <= report["validation"]["metrics"]["recall@10"] <= 1 and "recall@10" in report["metrics"]
    assert "validation leave-last-out" in capsys.readouterr().out


def test_train_on_a_predefined_fold(tmp_path, ml100k_dir) -> None:
    code = main(["train", "biased_mf", "--dataset", "movielens-100k", "--data-dir", str(ml100k_dir),
                 "--split", "fold:u1", "--epochs", "2", "--output", str(tmp_path), "--quiet"])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    # Predicting the training mean scores ~1.15 on u1; two epochs of the defaults learn far past it (~1.02).
    assert report["split"] == "fold:u1" and report["metrics"]["rmse"] < 1.1


def test_train_export_validate_recommend(tmp_path, capsys) -> None:
    exports = tmp_path / "exports" / "gmf"
    code = main(["train", "gmf", "--epochs", "1", "--output", str(tmp_path / "run"), "--export-dir", str(exports),
                 "--quiet"])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["export_path"] == str(exports / "1")
    meta = json.loads((exports / "1" / "assets.extra" / "tfrec_metadata.json").read_text())
    assert meta["metrics"] == report["metrics"]
    # The same saved model exported again: the next version.
    assert main(["export", report["model_path"], "--export-dir", str(exports)]) == 0
    assert main(["validate", str(exports)]) == 0
    warmups = len(tfrec.serving.warmup.read_warmup(exports / "2"))
    assert f"{exports / '2'}: OK, {warmups} warmup requests matched" in capsys.readouterr().out
    assert (
        main(["recommend", str(exports), "--user", "u1", "--user", "nobody", "-k", "3", "--exclude", "i1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "user u1:\n" in out and "    3. " in out and " i1 " not in out
    assert "user nobody: not in the training data; these are the answers for an unknown user\n" in out
    rows = [line for line in out.splitlines() if line.startswith("    ")]
    assert len(rows) == 6 and len({len(line) for line in rows}) == 1, rows  # aligned columns
    assert main(["recommend", str(exports), "--user", "u1", "-k", "101"]) == 2
    assert "argument -k: at most 100 (the export's max_k" in capsys.readouterr().err
    assert main(["export", report["model_path"], "--export-dir", str(exports), "--version", "1"]) == 2
    assert "1 already exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    # recommend_excluding's width is fixed at export; more ids than it holds: one line.
    assert main(["export", report["model_path"], "--export-dir", str(exports), "--exclude-width", "1"]) == 0
    capsys.readouterr()
    assert main(["recommend", str(exports), "--user", "u1", "--exclude", "i1", "i2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "tfrec: error: argument --exclude: at most 1 item ids (the export's exclude width; "
        "export again with a larger --exclude-width)"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nope"], "unknown model 'nope'; registered models: ['bayesian_mf', 'biased_mf'"),
        (["train", "biased_mf", "--dataset", "netflix"], "unknown dataset 'netflix'"),
        (["train", "biased_mf", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
        (
            ["train", "biased_mf", "--epochs", "0"],
            "argument --epochs: must be an integer in [1, 1000000], got 0",
        ),
        (["train", "biased_mf", "--set", "embedding_dim"], "argument --set: expected KEY=VALUE"),
        (["train", "biased_mf", "--exclude-width", "0"], "argument --exclude-width: must be an integer in [1,"),
        (["train", "biased_mf", "--set", "dim=3"], "unknown config field(s) ['dim']"),
        (["train", "biased_mf", "--set", "l2_bias=-1"], "l2_bias=-1.0 is invalid: must be a number >= 0"),
        (["train", "biased_mf", "--split", "shuffle"], "bad split spec 'shuffle'; allowed forms"),
        (
            ["train", "biased_mf", "--dataset", "movielens-1m", "--data-dir", "/nonexistent"],
            "the data folder /nonexistent does not exist",
        ),
        (
            ["train", "biased_mf", "--output", "/proc/forbidden"],
            "argument --output: cannot write to /proc/forbidden",
        ),
        (["fly"], "argument COMMAND: invalid choice: 'fly'"),
        (["train", "biased_mf", "--protocol", "sampled"], "bad protocol 'sampled'"),
        (["train", "biased_mf", "--k", "10,x"], "argument --k: expected comma-separated positive integers"),
        (["train", "biased_mf", "--k", "0"], "argument --k: expected comma-separated positive integers"),
        (["export", "/nonexistent/model.keras", "--export-dir", "x"], "argument model_path: no file"),
        (["validate", "/nonexistent"], "/nonexistent: no SavedModel here and no numbered version below it"),
        (["recommend", "/nonexistent", "--user", "1"], "no SavedModel here"),
        (
            ["recommend", "/nonexistent", "--user", "1", "-k", "0"],
            "argument -k: must be an integer in [1, 2147483647], got 0",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("tfrec: error: ") and message in err


def test_bare_tfrec_prints_usage_and_says_what_is_missing(capsys) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[0].startswith("usage: tfrec")
        and err[1].startswith("tfrec: error: name a command")
        and len(err) == 2
    )


def test_python_dash_m_reports_user_errors_without_traceback() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "tfrec", "train", "biased_mf", "--split", "random:2"],
                            capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "tfrec: error: random split: the test fraction must be between 0 and 1" in result.stderr
