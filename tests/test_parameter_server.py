"""Training under ParameterServerStrategy on a real local cluster.

Each test starts two workers and two parameter servers as ``python -m tfrec cluster-task``
processes on 127.0.0.1 (TF_CONFIG names the cluster), runs the chief (the CLI, or a script
on the Python API) against them, and stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "TFREC_PROGRESS": "0"}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def task_env(cluster: dict, job: str, index: int) -> dict:
    config = {"cluster": cluster, "task": {"type": job, "index": index}}
    return {**os.environ, **QUIET, "TF_CONFIG": json.dumps(config)}


@contextlib.contextmanager
def local_cluster(folder: Path):
    """Two workers and two parameter servers serving on 127.0.0.1; yields (cluster, {task: process})."""
    ports = free_ports(5)
    cluster = {
        "chief": [f"127.0.0.1:{ports[0]}"],
        "worker": [f"127.0.0.1:{p}" for p in ports[1:3]],
        "ps": [f"127.0.0.1:{p}" for p in ports[3:5]],
    }
    tasks = {}
    try:
        for job, index in (("ps", 0), ("ps", 1), ("worker", 0), ("worker", 1)):
            log = open(folder / f"{job}-{index}.log", "w")  # noqa: SIM115 (closed with the process)
            tasks[f"{job} {index}"] = subprocess.Popen(
                [sys.executable, "-m", "tfrec", "cluster-task"],
                env=task_env(cluster, job, index), stdout=log, stderr=subprocess.STDOUT, cwd=folder,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        for name in tasks:
            log = folder / f"{name.replace(' ', '-')}.log"
            while "serving on" not in log.read_text():
                assert tasks[name].poll() is None, f"{name} exited: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"{name} did not start: {log.read_text()[-2000:]}"
                time.sleep(0.2)
        yield cluster, tasks
    finally:
        for process in tasks.values():
            process.kill()
        for process in tasks.values():
            process.wait(timeout=30)


def chief(cluster: dict, argv: list[str], folder: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], env=task_env(cluster, "chief", 0), cwd=folder,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def saved_variables(export: Path) -> dict[str, list[int]]:
    import tensorflow as tf

    return dict(tf.train.list_variables(str(export / "variables" / "variables")))


def test_cli_trains_with_tables_split_over_two_servers_like_one_process(tmp_path) -> None:
    """`tfrec train --strategy parameter-server`: every embedding table is split over
    both servers, the quality is one process's within 0.03 Recall@10 (2,000 test users;
    the same data, seed and epochs), and the export is the one-process export's shape."""
    train = ["-m", "tfrec", "train", "implicit_mf", "--epochs", "3", "--quiet"]
    with local_cluster(tmp_path) as (cluster, _):
        done = chief(cluster, [*train, "--strategy", "parameter-server", "--min-shard-bytes", "4096",
                               "--output", "ps", "--export-dir", "exported-ps"], tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "parts on parameter servers (ps 0, ps 1)" in done.stdout or "(ps 1, ps 0)" in done.stdout, done.stdout
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
    assert abs(recall[0] - recall[1]) <= 0.03, recall
    assert recall[0] > 0.2, recall  # popularity scores ~0.05 on this data

    # The export from the split tables holds the same variables as one process's.
    assert saved_variables(tmp_path / "exported-ps" / "1") == saved_variables(tmp_path / "exported-one" / "1")


API_CHIEF = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tfrec
    from tfrec.core.distribute import parameter_server_strategy, dense_weights, placement
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
    with local_cluster(tmp_path) as (cluster, _):
        done = chief(cluster, ["-c", API_CHIEF], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    for tables in (report["split"], report["trained_placement"]):
        towers = {name.split("/")[0] for name in tables}
        assert towers == {"query_tower", "candidate_tower"}, tables
        assert all(sorted(d.split("/")[3] for d in devices) == ["task:0", "task:1"] for devices in tables.values())
    assert report["gathered_same"] and report["gathered_plain"], report
    print(f"two_tower over parameter servers R@10 {report['recall']:.4f}")
    assert report["recall"] > 0.1, report
