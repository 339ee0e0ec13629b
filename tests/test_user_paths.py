"""What a user does in the first hour: their own DataFrame, seen items left out, str ids,
relative paths, honest logs, nothing lost when a later step fails."""

from __future__ import annotations

import json
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import keras, tf
from tfrec.cli import main
from tfrec.core import chunks
from tfrec.data import split
from tfrec.serving.exporter import ExportError
from tfrec.training import train


@pytest.fixture(scope="module")
def frame(small) -> pd.DataFrame:
    """A user's own DataFrame (plain columns, no tfrec types)."""
    return small.frame[["user_id", "item_id", "rating", "timestamp"]].copy()


@pytest.fixture(scope="module")
def trained(frame):
    parts = split(frame, "leave-last-out", seed=0)
    result = train("implicit_mf", parts.train.frame, epochs=1, verbose=0)
    return result, parts


# === DataFrames everywhere ===
def test_a_dataframe_is_accepted_by_every_entry_point(frame) -> None:
    parts = tfrec.data.split(frame, "random:0.2", seed=1)
    model = tfrec.models.build("biased_mf", parts.train.frame, embedding_dim=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(tfrec.data.to_dataset(parts.train.frame, label="rating", batch_size=512), epochs=1, verbose=0)
    metrics = tfrec.evaluate(model, parts.train.frame, parts.test.frame)
    assert set(metrics) == {"rmse", "mae"} and metrics["rmse"] < 2


@pytest.mark.parametrize("call", [
    lambda f: tfrec.models.build("biased_mf", f),
    lambda f: tfrec.data.split(f, "random:0.2"),
    lambda f: tfrec.data.to_dataset(f),
    lambda f: train("biased_mf", f, epochs=1, verbose=0),
], ids=["build", "split", "to_dataset", "train"])  # fmt: skip
def test_a_dataframe_missing_columns_is_named(call) -> None:
    with pytest.raises(tfrec.DataError, match=r"missing column\(s\) \['item_id'\]"):
        call(pd.DataFrame({"user_id": ["a"], "movie": ["m"]}))


def test_something_else_is_refused_clearly() -> None:
    with pytest.raises(tfrec.DataError, match="expected tfrec Interactions or a pandas DataFrame"):
        tfrec.models.build("biased_mf", [("a", "b")])


def test_evaluate_takes_an_int_k_and_refuses_strings(trained) -> None:
    result, parts = trained
    one = tfrec.evaluate(result.model, parts.train, parts.test, k=10)
    assert "recall@10" in one and "recall@20" not in one
    assert one == tfrec.evaluate(result.model, parts.train, parts.test, k=[10])
    for bad in ("10", 2.7, None, [1.5]):
        with pytest.raises(tfrec.TfrecError, match="k must be"):
            tfrec.evaluate(result.model, parts.train, parts.test, k=bad)


# === Seen items ===
def _seen(parts, user: str) -> set[str]:
    frame = parts.train.frame
    return set(frame.loc[frame["user_id"] == user, "item_id"])


def test_recommend_leaves_out_training_items_by_default(trained) -> None:
    result, parts = trained
    model = result.model
    users = list(model.user_vocabulary[:20])
    ids, _ = model.recommend(users, k=10)
    assert all(not set(row) & _seen(parts, u) for u, row in zip(users, ids))
    everything, _ = model.recommend(users, k=10, exclude_seen=False)
    assert any(set(row) & _seen(parts, u) for u, row in zip(users, everything))  # the opt-out differs


def test_exhausted_rows_end_in_empty_ids_never_in_excluded_items(trained) -> None:
    result, parts = trained
    model = result.model
    user, catalogue = model.user_vocabulary[0], len(model.item_vocabulary)
    seen = _seen(parts, user)
    ids, scores = model.recommend([user], k=catalogue)
    left = catalogue - len(seen)
    assert not set(ids[0]) & seen and list(ids[0][left:]) == [""] * len(seen)
    assert np.isneginf(scores[0][left:]).all() and np.isfinite(scores[0][:left]).all()
    extra = list(ids[0][:3])
    again, _ = model.recommend([user], k=catalogue, exclude=[extra])
    assert not set(again[0]) & (seen | set(extra))


def test_seen_items_survive_save_and_load(trained, tmp_path) -> None:
    model = trained[0].model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "saving a model that has not yet been built"
        model.save(tmp_path / "m.keras")
    loaded = tfrec.models.load(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.seen_items.items, model.seen_items.items)
    np.testing.assert_array_equal(loaded.seen_items.offsets, model.seen_items.offsets)
    users = list(model.user_vocabulary[:5])
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])


def test_the_export_leaves_seen_items_out_and_answers_str(trained, tmp_path) -> None:
    result, parts = trained
    model = result.model
    users = [*list(model.user_vocabulary[:4]), "nobody"]
    catalogue = len(model.item_vocabulary)
    served = tfrec.serving.ExportedModel(tfrec.export(model, tmp_path / "with", max_k=catalogue))
    got = served.run("recommend", user_id=users, k=catalogue)
    want = model.recommend(users, k=catalogue)
    np.testing.assert_array_equal(got["item_ids"], want[0])
    assert all(isinstance(v, str) for v in got["item_ids"].ravel())
    assert not set(got["item_ids"][0]) & _seen(parts, users[0]) and "" in set(got["item_ids"][0])
    opted = served.run("recommend_including_seen", user_id=users, k=5)
    np.testing.assert_array_equal(opted["item_ids"], model.recommend(users, k=5, exclude_seen=False)[0])
    meta = json.loads((served.path / "assets.extra" / "tfrec_metadata.json").read_text())
    assert meta["seen_items"]["pairs"] == len(model.seen_items) > 0
    served.close()
    bare = tfrec.serving.ExportedModel(tfrec.export(model, tmp_path / "without", seen_items=False))
    np.testing.assert_array_equal(bare.run("recommend", user_id=users, k=5)["item_ids"], opted["item_ids"])
    bare.close()


# === Relative paths and the CLI ===
def test_relative_export_paths_work(trained, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    path = tfrec.export(trained[0].model, "exports/implicit_mf")
    assert str(path) == os.path.join("exports", "implicit_mf", "1")
    assert tfrec.serving.validate("exports/implicit_mf/1")["requests"] == 50
    assert main(["validate", "exports/implicit_mf/1"]) == 0
    assert (
        main(["recommend", "exports/implicit_mf", "--user", trained[0].model.user_vocabulary[0], "-k", "3"])
        == 0
    )
    assert "b'" not in capsys.readouterr().out


def test_a_failed_export_keeps_the_run(tmp_path, monkeypatch, capsys) -> None:
    def fail(*args, **kwargs):
        raise ExportError("simulated export failure")

    monkeypatch.setattr(tfrec, "export", fail, raising=False)
    monkeypatch.setattr(tfrec.serving, "export", fail)
    code = main(["train", "gmf", "--epochs", "1", "--output", str(tmp_path / "run"),
                 "--export-dir", str(tmp_path / "exports"), "--quiet"])  # fmt: skip
    assert code == 2 and "simulated export failure" in capsys.readouterr().err
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "recall@10" in report["metrics"] and (tmp_path / "run" / "model.keras").is_file()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.json", "model.keras"]


def test_a_failed_run_leaves_no_empty_folder_and_users_print_as_integers(tmp_path, capsys) -> None:
    output = tmp_path / "runs" / "x"
    assert main(["train", "implicit_mf", "--output", str(output), "--protocol", "sampled:100000"]) == 2
    err = capsys.readouterr().err
    assert "sampled:100000: a test user has only" in err and not (tmp_path / "runs").exists()
    assert main(["train", "implicit_mf", "--epochs", "1", "--output", str(output), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  users +(2,000|1,99\d) +(2,000|1,99\d)$", out, re.M), out
    assert sorted(p.name for p in output.iterdir()) == ["metrics.json", "model.keras"]


@pytest.mark.parametrize("argv, fragment", [
    (["--k", "5000"], "k=5000 exceeds the 1000 candidate items"),
    (["--protocol", "cold-start"], "no item absent from training"),
    (["--protocol", "sampled:999"], "sampled:999: a test user has only"),
], ids=["k-above-catalogue", "cold-start-without-cold-items", "sampled-too-many"])  # fmt: skip
def test_evaluation_problems_are_found_before_training(tmp_path, capsys, argv, fragment) -> None:
    assert main(["train", "implicit_mf", "--output", str(tmp_path / "r"), *argv]) == 2
    captured = capsys.readouterr()
    assert fragment in captured.err and "Epoch" not in captured.out and not (tmp_path / "r").exists()


def test_resuming_a_different_run_is_refused(tmp_path, capsys) -> None:
    backup = tmp_path / "run" / "backup"
    backup.mkdir(parents=True)
    (backup / "tfrec-run.json").write_text(json.dumps({"model": "gmf"}))
    (backup / "chief").mkdir()
    (backup / "chief" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    assert main(["train", "implicit_mf", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "holds an interrupted run with other" in err and "model ('gmf', now 'implicit_mf')" in err
    assert f"delete {backup}" in err and (backup / "chief" / "checkpoint").is_file()


# === Keras conventions ===
def test_training_logs_say_what_is_true(trained) -> None:
    history = trained[0].history
    assert "loss" in history and "regularization_loss" not in history and "total_loss" not in history


def test_ranking_metrics_drive_early_stopping(small) -> None:
    parts = split(split(small, "leave-last-out").train, "leave-last-out")  # validation from training data
    model = tfrec.models.build("implicit_mf", parts.train)
    model.compile(optimizer=keras.optimizers.Adam(1e-6))  # too small to improve: stops early
    stopper = keras.callbacks.EarlyStopping(monitor="val_recall@10", mode="max", patience=1)
    history = model.fit(tfrec.data.to_dataset(parts.train, batch_size=512), epochs=6, verbose=0,
                        callbacks=[tfrec.evaluation.RankingMetrics(parts.train, parts.test, k=10), stopper])  # fmt: skip
    assert len(history.history["val_recall@10"]) == len(history.epoch) < 6
    assert history.history["val_recall@10"][0] == pytest.approx(
        tfrec.evaluate(model, parts.train, parts.test, k=10)["recall@10"], abs=0.02
    )


def test_fit_takes_a_plain_dataset_of_feature_dicts(frame) -> None:
    model = tfrec.models.build("implicit_mf", frame)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    plain = tf.data.Dataset.from_tensor_slices(
        {"user_id": frame["user_id"].to_numpy(), "item_id": frame["item_id"].to_numpy()}
    ).batch(256)
    history = model.fit(plain, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# === Progress on long work ===
def test_progress_shows_only_when_asked_or_interactive(trained, monkeypatch, capsys) -> None:
    result, parts = trained
    monkeypatch.setattr(chunks, "SCORES_PER_CHUNK", 10 * len(result.model.item_vocabulary))
    monkeypatch.setenv("TFREC_PROGRESS", "0")
    tfrec.evaluate(result.model, parts.train, parts.test, k=10, chunk_size=10)
    assert "chunks of users" not in capsys.readouterr().out
    monkeypatch.setenv("TFREC_PROGRESS", "1")
    tfrec.evaluate(result.model, parts.train, parts.test, k=10, chunk_size=10)
    result.model.recommend(list(result.model.user_vocabulary[:60]), k=3)
    out = capsys.readouterr().out
    assert "chunks of users" in out and "chunks" in out.split("chunks of users")[-1]
