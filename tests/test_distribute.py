"""Every registered model builds and trains under tf.distribute.MirroredStrategy.

The contract life runs in a subprocess that splits the CPU into two logical devices
(this must happen before TensorFlow initialises, hence the fresh process) and mirrors
every model over them: variables are MirroredVariables, a few steps of ``model.fit``
give a finite loss, and the trained model scores and recommends like any other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tfrec.cli import main

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    import tfrec
    from tfrec.data import split
    from tfrec.training import train

    parts = split(tfrec.datasets.synthetic(num_users=300, num_items=200, num_interactions=6000, seed=0),
                  "random:0.2", seed=0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    report = {}
    for name in tfrec.models.names():
        result = train(name, parts.train, strategy=strategy, epochs=1, batch_size=128, verbose=0)
        model = result.model
        users = parts.test.frame["user_id"].to_numpy()[:5]
        items = parts.test.frame["item_id"].to_numpy()[:5]
        ids, scores = model.recommend(users, k=3)
        report[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "mirrored": all(type(v).__name__ == "MirroredVariable" for v in model.trainable_variables),
            "loss_finite": bool(np.isfinite(result.history["loss"]).all()),
            "scores_finite": bool(np.isfinite(model.score(users, items)).all()),
            "recommend_shape": list(ids.shape),
        }
    print("REPORT" + json.dumps(report))
    """
)


@pytest.mark.slow
def test_every_model_trains_mirrored_over_two_devices() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    import tfrec

    assert sorted(report) == tfrec.models.names()
    for name, facts in report.items():
        assert facts == {
            "replicas": 2, "mirrored": True, "loss_finite": True, "scores_finite": True, "recommend_shape": [5, 3],
        }, name  # fmt: skip


def test_cli_strategy_flags(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", "implicit_mf", "--strategy", "multi-worker", "--output", str(tmp_path)]) == 2
    assert "set TF_CONFIG" in capsys.readouterr().err
    assert main(["train", "implicit_mf", "--strategy", "mirrored", "--epochs", "1", "--output", str(tmp_path),
                 "--quiet"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["recall@10"] >= 0
