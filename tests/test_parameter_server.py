"""Training under ParameterServerStrategy on a real local cluster.

Each test starts two workers and two parameter servers as ``python -m tfrec cluster-task``
processes on 127.0.0.1 (``tfrec.core.parameter_servers.local_cluster``; TF_CONFIG names
the cluster), runs the chief (the CLI, or a script on the Python API) against them, and
stops every process it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tfrec.core.parameter_servers import LocalCluster, local_cluster, parameter_server_strategy
from tfrec.errors import TfrecError

pytestmark = pytest.mark.slow

QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "TFREC_PROGRESS": "0"}


def task_env(cluster: LocalCluster, job: str, index: int) -> dict:
    return {**os.environ, **QUIET, "TF_CONFIG": cluster.tf_config(job, index)}


def chief(
    cluster: LocalCluster, argv: list[str], folder: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], env=task_env(cluster, "chief", 0), cwd=folder,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def saved_variables(export: Path) -> dict[str, list[int]]:
    import tensorflow as tf

    return dict(tf.train.list_variables(str(export / "variables" / "variables")))


def test_cli_trains_with_tables_split_over_two_servers_like_one_process(tmp_path) -> None:
    """`tfrec train --strategy parameter-server`: every embedding table is split over
    both servers, the quality is one process's within 0.04 Recall@10 (2,000 test users;
    the same data, seed and epochs), and the export is the one-process export's shape;
    the same cluster then trains from streamed CSV shards."""
    train = ["-m", "tfrec", "train", "implicit_mf", "--epochs", "3", "--quiet"]
    servers = ["--strategy", "parameter-server", "--min-shard-bytes", "4096"]
    import tfrec

    log = tfrec.datasets.synthetic(num_users=500, num_items=300, num_interactions=20000, seed=3).frame
    (tmp_path / "logs").mkdir()
    for j in range(2):  # CSV shards the workers stream (each its share of the files)
        log.iloc[j::2][["user_id", "item_id"]].to_csv(tmp_path / "logs" / f"part-{j}.csv", index=False)
    with local_cluster(logs=tmp_path) as cluster:
        done = chief(cluster, [*train, *servers, "--output", "ps", "--export-dir", "exported-ps"], tmp_path)
        streamed = chief(
            cluster, [*train, *servers, "--data", "logs/part-*.csv", "--output", "stream"], tmp_path
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert streamed.returncode == 0, streamed.stderr[-3000:]
    report = json.loads((tmp_path / "stream" / "metrics.json").read_text())
    assert len(report["placement"]) == 2 and report["metrics"]["recall@10"] > 0.1, report
    assert "parts on parameter servers (ps 0, ps 1)" in done.stdout or "(ps 1, ps 0)" in done.stdout, (
        done.stdout
    )
    alone = subprocess.run([sys.executable, *train, "--output", "one", "--export-dir", "exported-one"],
                           env={**os.environ, **QUIET}, cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-3000:]

    sharded = json.loads((tmp_path / "ps" / "metrics.json").read_text())
    single = json.loads((tmp_path / "one" / "metrics.json").read_text())
    tables = sharded["placement"]
    assert len(tables) == 2, tables  # the user and the item table
    for devices in tables.values():
        assert sorted(d.split("/")[3] for d in devices) == ["task:0", "task:1"], tables
        assert all("/job:ps/" in d for d in devices)
    assert "placement" not in single
    recall = sharded["metrics"]["recall@10"], single["metrics"]["recall@10"]
    print(f"parameter servers R@10 {recall[0]:.4f} ({sharded['train_seconds']:.1f}s), "
          f"one process {recall[1]:.4f} ({single['train_seconds']:.1f}s)")  # fmt: skip
    assert abs(recall[0] - recall[1]) <= 0.04, recall
    assert recall[0] > 0.2, recall  # popularity scores ~0.05 on this data

    # The export from the split tables holds the same variables as one process's.
    assert saved_variables(tmp_path / "exported-ps" / "1") == saved_variables(tmp_path / "exported-one" / "1")


API_CHIEF = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tfrec
    from tfrec.core.parameter_servers import parameter_server_strategy, placement
    from tfrec.data import split
    from tfrec.training import train

    strategy = parameter_server_strategy(min_shard_bytes=2048)
    data = tfrec.datasets.synthetic(num_users=400, num_items=300, num_interactions=8000, seed=1)
    parts = split(data, "leave-last-out", seed=0)
    report = {}
    # A model built under the strategy: its tables are split; its gathered copy answers alike.
    with strategy.scope():
        model = tfrec.models.build("two_tower", parts.train)
    model.build_now()
    report["split"] = placement(model)
    users = parts.test.frame["user_id"].to_numpy()[:20]
    ids, scores = model.recommend(users, k=5)
    copy = model.for_serving()
    copy_ids, copy_scores = copy.recommend(users, k=5)
    report["gathered_same"] = bool((ids == copy_ids).all() and np.allclose(scores, copy_scores, atol=1e-5))
    report["gathered_plain"] = all(type(v).__name__ in ("ResourceVariable", "UninitializedVariable")
                                   for v in copy.weights)
    result = train("two_tower", parts.train, strategy=strategy, epochs=2, verbose=0)
    report["trained_placement"] = result.placement
    report["recall"] = tfrec.evaluate(result.model, parts.train, parts.test, k=10)["recall@10"]
    print("REPORT" + json.dumps(report))
    """
)


def test_python_api_splits_tables_and_gathers_them_back(tmp_path) -> None:
    """On the Python API: a model built under ``parameter_server_strategy`` has its tables
    split over both servers, ``for_serving`` gathers them into plain variables that answer
    exactly as the split model, and ``train`` reports the placement and learns."""
    with local_cluster(logs=tmp_path) as cluster:
        done = chief(cluster, ["-c", API_CHIEF], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    for tables in (report["split"], report["trained_placement"]):
        towers = {name.split("/")[0] for name in tables}
        assert towers == {"query_tower", "candidate_tower"}, tables
        assert all(
            sorted(d.split("/")[3] for d in devices) == ["task:0", "task:1"] for devices in tables.values()
        )
    assert report["gathered_same"] and report["gathered_plain"], report
    print(f"two_tower over parameter servers R@10 {report['recall']:.4f}")
    assert report["recall"] > 0.1, report


def run_until_epoch(
    cluster: LocalCluster, argv: list[str], folder: Path, epoch: int, then
) -> tuple[int, str, str]:
    """Runs the chief, calls ``then()`` when it starts ``epoch``; returns (code, stdout, stderr)."""
    process = subprocess.Popen([sys.executable, *argv], env=task_env(cluster, "chief", 0), cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        out = []
        for line in process.stdout:
            out.append(line)
            if line.startswith(f"Epoch {epoch}/"):
                then()
                break
        rest, err = process.communicate(timeout=180)
        return process.returncode, "".join(out) + rest, err
    finally:
        process.kill()


def test_a_lost_worker_is_survived_and_a_lost_server_resumes_from_the_backup(tmp_path) -> None:
    """Faults in the cluster: a worker killed mid-training costs nothing (the coordinator
    gives its steps to the other worker; one line says so); a parameter server killed
    mid-training stops the chief with one line naming it and the backup, and the same
    command on a restarted cluster resumes after the last finished epoch."""
    train = ["-m", "tfrec", "train", "implicit_mf", "--epochs", "6", "--strategy", "parameter-server",
             "--min-shard-bytes", "4096"]  # fmt: skip
    with local_cluster(logs=tmp_path) as cluster:
        code, out, err = run_until_epoch(
            cluster, [*train, "--output", "w"], tmp_path, 3, cluster.tasks["worker 1"].kill
        )
    assert code == 0, err[-3000:]
    assert err.strip().splitlines() == [
        "tfrec: worker 1 stopped answering; the other workers take its steps"
    ], err
    assert json.loads((tmp_path / "w" / "metrics.json").read_text())["epochs_run"] == list(range(6))

    with local_cluster(logs=tmp_path) as cluster:
        code, out, err = run_until_epoch(
            cluster, [*train, "--output", "p"], tmp_path, 4, cluster.tasks["ps 1"].kill
        )
    assert code == 2
    assert err.strip().splitlines() == [
        "tfrec: error: parameter server 1 stopped answering during training, so its part of the tables is "
        "lost; restart it and run the same command again: training resumes from the last finished epoch "
        f"saved in {tmp_path / 'p' / 'backup'}"
    ], err
    assert not (tmp_path / "p" / "metrics.json").exists()
    with local_cluster(logs=tmp_path) as cluster:
        done = chief(cluster, [*train, "--output", "p", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = json.loads((tmp_path / "p" / "metrics.json").read_text())["epochs_run"]
    assert resumed[-1] == 5 and 2 <= resumed[0] <= 4, resumed  # the epochs after the last backup


def test_a_cluster_that_never_answers_is_one_error_after_the_wait(monkeypatch) -> None:
    with local_cluster(workers=1, servers=1) as cluster:
        config, address = cluster.tf_config(), cluster.cluster["worker"][0]
    monkeypatch.setenv("TF_CONFIG", config)  # the same cluster, stopped: nothing listens
    started = time.monotonic()
    with pytest.raises(TfrecError, match=rf"worker 0 at {address} \(TF_CONFIG\) did not answer within 2s"):
        parameter_server_strategy(wait=2)
    assert time.monotonic() - started < 10


def test_a_local_cluster_stops_what_it_started_and_removes_its_logs() -> None:
    with local_cluster(workers=1, servers=1) as cluster:
        processes, logs = list(cluster.tasks.values()), Path(cluster.logs)
        assert sorted(cluster.tasks) == ["ps 0", "worker 0"] and all(p.poll() is None for p in processes)
        assert sorted(f.name for f in logs.iterdir()) == ["ps-0.log", "worker-0.log"]
        port = cluster.cluster["worker"][0].rsplit(":", 1)[1]
        said = (logs / "worker-0.log").read_text()  # where it really listens, and what that means
        assert f"worker 0 serving on all interfaces, port {port} (unauthenticated: private network only" in said
    assert all(p.poll() is not None for p in processes) and not logs.exists()
