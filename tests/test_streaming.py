"""Training from sharded Parquet / CSV files streamed from disk (the log never in memory)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.cli import main
from tfrec.data import streaming
from tfrec.data.vocabulary import Vocabulary
from tfrec.training import train, train_streaming

FRACTION = 0.2


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    data = tfrec.datasets.synthetic(num_users=300, num_items=200, num_interactions=8000, seed=2)
    frame = data.frame[["user_id", "item_id", "rating"]].rename(columns={"user_id": "uid", "item_id": "song"})
    frame["plays"] = np.arange(len(frame)) % 7 + 1
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def write_shards(frame: pd.DataFrame, folder: Path, kind: str, parts: int = 3) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for j in range(parts):
        part = frame.iloc[j::parts]
        if kind == "parquet":
            part.to_parquet(folder / f"part-{j}.parquet", index=False)
        else:
            part.to_csv(folder / f"part-{j}.csv", index=False)
    return str(folder / f"part-*.{kind}")


def hash_split(frame: pd.DataFrame) -> np.ndarray:
    """The test mask the hash split gives, computed independently of the scan."""
    key = frame["uid"].astype(str) + "\x1f" + frame["song"].astype(str)
    buckets = tf.strings.to_hash_bucket_fast(tf.constant(key.to_numpy(dtype=object)), 10_000).numpy()
    return buckets < int(FRACTION * 10_000)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_scan_counts_the_training_part_as_the_in_memory_vocabulary_does(log, tmp_path, kind) -> None:
    shards = streaming.Shards.of(write_shards(log, tmp_path, kind), "user=uid,item=song,rating=rating")
    summary = streaming.scan(shards, test_fraction=FRACTION)
    test = hash_split(log)
    assert (summary.train_rows, summary.test_rows) == (int((~test).sum()), int(test.sum()))
    train_part = tfrec.data.Interactions(log[~test].rename(columns={"uid": "user_id", "song": "item_id"}))
    vocabulary = Vocabulary.from_interactions(train_part)
    assert dict(zip(summary.items, summary.item_counts)) == dict(
        zip(vocabulary.items, vocabulary.item_counts)
    )
    assert dict(zip(summary.users, summary.user_counts)) == dict(
        zip(vocabulary.users, vocabulary.user_counts)
    )
    assert list(summary.item_counts) == sorted(summary.item_counts, reverse=True)
    assert summary.ratings.mean == pytest.approx(float(log.loc[~test, "rating"].mean()), rel=1e-6)
    again = streaming.LogSummary.read(summary.write(tmp_path / "vocabulary"))
    assert again == summary


def test_min_count_and_size_caps_keep_the_most_frequent_ids(log, tmp_path) -> None:
    shards = streaming.Shards.of(write_shards(log, tmp_path, "parquet"), "user=uid,item=song")
    full = streaming.scan(shards)
    capped = streaming.scan(shards, min_count=30, max_items=50)
    assert capped.items == full.items[: len(capped.items)] and len(capped.items) <= 50
    assert min(capped.item_counts) >= 30


def test_the_stream_holds_each_training_row_once_and_the_files_split_across_pipelines(log, tmp_path) -> None:
    shards = streaming.Shards.of(write_shards(log, tmp_path, "parquet"), "user=uid,item=song,weight=plays")
    rows = []
    for batch in streaming.stream(shards, test_fraction=FRACTION, batch_size=500, weights=True):
        rows += list(zip(batch["user_id"].numpy().astype(str), batch["item_id"].numpy().astype(str)))
    test = hash_split(log)
    expected = list(zip(log.loc[~test, "uid"].astype(str), log.loc[~test, "song"].astype(str)))
    assert sorted(rows) == sorted(expected)
    halves = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
        )
        part = streaming.stream(shards, batch_size=1000, shuffle_buffer=0, input_context=context)
        halves.append({(u, i) for b in part for u, i in zip(b["user_id"].numpy(), b["item_id"].numpy())})
    assert not halves[0] & halves[1] and len(halves[0] | halves[1]) == len(log)


def test_streamed_training_learns_as_in_memory_training_does(log, tmp_path) -> None:
    shards = streaming.Shards.of(write_shards(log, tmp_path, "parquet"), "user=uid,item=song,rating=rating")
    summary = streaming.scan(shards, test_fraction=FRACTION)
    sample_train, sample_test = streaming.sample_for_evaluation(shards, summary, users=10_000)
    assert len(sample_test) == summary.test_rows  # every user sampled: the whole test part
    streamed = train_streaming("implicit_mf", shards, summary=summary, epochs=6, verbose=0).model
    test = hash_split(log)
    frame = log.rename(columns={"uid": "user_id", "song": "item_id"})
    in_memory = train("implicit_mf", tfrec.data.Interactions(frame[~test]), epochs=6, verbose=0).model
    popularity = tfrec.evaluation.Popularity(tfrec.data.Interactions(sample_train))
    score = {name: tfrec.evaluate(m, sample_train, sample_test, k=[10])["recall@10"]
             for name, m in (("streamed", streamed), ("in memory", in_memory), ("popularity", popularity))}  # fmt: skip
    print(score)
    assert score["streamed"] > 1.5 * score["popularity"] and score["streamed"] > 0.8 * score["in memory"]
    rating = train_streaming("biased_mf", shards, summary=summary, epochs=3, verbose=0).model
    rmse = tfrec.evaluate(rating, sample_train, sample_test)["rmse"]
    mean_only = float(np.sqrt(((sample_test["rating"] - summary.ratings.mean) ** 2).mean()))
    assert rmse < mean_only


def test_bad_logs_fail_with_one_clear_line(log, tmp_path) -> None:
    with pytest.raises(tfrec.DataError, match="matches no file"):
        streaming.Shards.of(str(tmp_path / "nothing-*.parquet"))
    pattern = write_shards(log, tmp_path / "ok", "parquet")
    with pytest.raises(tfrec.DataError, match=r"part-0.parquet: no column 'user_id' \(mapped by --columns\)"):
        streaming.Shards.of(pattern)
    with pytest.raises(tfrec.DataError, match="unknown field 'artist'"):
        streaming.Shards.of(pattern, "user=uid,artist=song")
    mixed = tmp_path / "mixed"
    write_shards(log, mixed, "parquet", parts=2)
    log.assign(rating=log["rating"].astype(str)).iloc[:10].to_parquet(mixed / "part-9.parquet", index=False)
    with pytest.raises(tfrec.DataError, match="part-9.parquet: its columns .* differ from"):
        streaming.Shards.of(str(mixed / "part-*.parquet"), "user=uid,item=song,rating=rating")
    broken = tmp_path / "broken"
    write_shards(log, broken, "parquet", parts=2)
    whole = (broken / "part-1.parquet").read_bytes()
    (broken / "part-1.parquet").write_bytes(
        whole[:4] + b"\0" * 200 + whole[204:]
    )  # corrupt pages, intact footer
    shards = streaming.Shards.of(str(broken / "part-*.parquet"), "user=uid,item=song")
    with pytest.raises(tfrec.DataError, match="part-1.parquet"):
        streaming.scan(shards)
    bad_csv = tmp_path / "csv"
    write_shards(
        log.assign(rating=log["rating"].astype(str).where(log.index != 5, "five")), bad_csv, "csv", parts=1
    )
    with pytest.raises(tfrec.DataError, match=r"part-0.csv: line 7: rating 'five' is not a valid number"):
        streaming.scan(streaming.Shards.of(str(bad_csv / "part-*.csv"), "user=uid,item=song,rating=rating"))
    with pytest.raises(tfrec.TfrecError, match="gmf with this config cannot train from streamed files"):
        train_streaming("gmf", streaming.Shards.of(pattern, "user=uid,item=song"), epochs=1)


def test_the_cli_trains_from_shards_and_refuses_mixed_sources(log, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_shards(log, tmp_path / "logs", "csv")
    argv = ["train", "implicit_mf", "--data", "logs/part-*.csv", "--columns", "user=uid,item=song",
            "--epochs", "2", "--quiet", "--output", "run"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["split"] == "hash:0.1" and report["metrics"]["recall@10"] > 0
    assert (tmp_path / "run" / "vocabulary" / "items.tsv").read_text().startswith("id\tcount\n")
    assert not (tmp_path / "run" / "backup").exists()
    assert main([*argv, "--dataset", "movielens-100k"]) == 2
    assert "streamed data takes --test-fraction, not --dataset" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["train", "gmf", "--data", "logs/part-*.csv", "--columns", "user=uid,item=song"]) == 2
    streamed = capsys.readouterr()
    assert (
        "gmf with this config cannot train from streamed files" in streamed.err
        and "data:" not in streamed.out
    )


@pytest.fixture()
def data_service():
    """A tf.data service on 127.0.0.1: a dispatcher and two workers, stopped afterwards."""
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    port = address.rsplit(":", 1)[1]
    workers = [
        service.WorkerServer(
            service.WorkerConfig(dispatcher_address=f"127.0.0.1:{port}", worker_address="127.0.0.1:%port%")
        )
        for _ in range(2)
    ]
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        for server in (*workers, dispatcher):
            server._stop()


def test_the_tf_data_service_feeds_training_from_its_workers(log, tmp_path, data_service) -> None:
    shards = streaming.Shards.of(write_shards(log, tmp_path, "csv", parts=4), "user=uid,item=song")
    served = streaming.stream(shards, test_fraction=FRACTION, batch_size=512, data_service=data_service)
    rows = sorted((u, i) for b in served for u, i in zip(b["user_id"].numpy(), b["item_id"].numpy()))
    local = streaming.stream(shards, test_fraction=FRACTION, batch_size=512)
    assert rows == sorted((u, i) for b in local for u, i in zip(b["user_id"].numpy(), b["item_id"].numpy()))
    summary = streaming.scan(shards, test_fraction=FRACTION)
    result = train_streaming(
        "implicit_mf", shards, summary=summary, data_service=data_service, epochs=6, verbose=0
    )
    assert np.isfinite(result.history["loss"]).all()
    sample_train, sample_test = streaming.sample_for_evaluation(shards, summary, users=10_000)
    popularity = tfrec.evaluation.Popularity(tfrec.data.Interactions(sample_train))
    learned = tfrec.evaluate(result.model, sample_train, sample_test, k=[10])["recall@10"]
    assert learned > 1.5 * tfrec.evaluate(popularity, sample_train, sample_test, k=[10])["recall@10"]
    parquet = streaming.Shards.of(write_shards(log, tmp_path / "pq", "parquet"), "user=uid,item=song")
    with pytest.raises(tfrec.DataError, match="cannot run the Python Parquet reader"):
        streaming.stream(parquet, data_service=data_service)


def test_a_log_that_repeats_pairs_is_evaluated_once_per_pair(log, tmp_path) -> None:
    """Real logs repeat (user, item) pairs (replays); the evaluation sample holds each once
    (a pair is on one side of the hash split)."""
    repeated = pd.concat([log, log.assign(rating=5.0)], ignore_index=True)
    shards = streaming.Shards.of(write_shards(repeated, tmp_path, "csv"), "user=uid,item=song,rating=rating")
    summary = streaming.scan(shards, test_fraction=FRACTION)
    sample_train, sample_test = streaming.sample_for_evaluation(shards, summary, users=10_000)
    test = hash_split(log)
    assert (len(sample_train), len(sample_test)) == (int((~test).sum()), int(test.sum()))
    pairs = set(zip(log["uid"].astype(str)[test], log["song"].astype(str)[test]))
    assert set(zip(sample_test["user_id"], sample_test["item_id"])) == pairs
    tfrec.data.Interactions(sample_train), tfrec.data.Interactions(sample_test)  # valid interactions


def test_parameter_server_training_refuses_parquet_before_contacting_the_cluster(
    log, tmp_path, monkeypatch, capsys
) -> None:
    cluster = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"], "ps": ["127.0.0.1:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    pattern = write_shards(log, tmp_path / "logs", "parquet")
    argv = ["train", "implicit_mf", "--data", pattern, "--columns", "user=uid,item=song",
            "--strategy", "parameter-server", "--output", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "parameter-server workers run the input pipeline themselves" in err
    assert not (tmp_path / "run").exists()
