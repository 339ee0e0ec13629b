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

import numpy as np
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
            # Trained weights are mirrored; bayesian_mf's are sampled (not trainable) and its
            # per-epoch statistics are summed across replicas on read (SyncOnRead).
            "mirrored": bool(model.variables) and all(
                type(v).__name__ == "MirroredVariable" or (not v.trainable and type(v).__name__ == "SyncOnReadVariable")
                for v in model.variables
            ),
            "loss_finite": bool(np.isfinite(result.history["loss"]).all()),
            "scores_finite": bool(np.isfinite(model.score(users, items)).all()),
            "recommend_shape": list(ids.shape),
        }
    # The replicas' statistics sum to one device's: the same seeded draw either way.
    alone = train("bayesian_mf", parts.train, epochs=1, batch_size=128, verbose=0).model
    mirrored = train("bayesian_mf", parts.train, strategy=strategy, epochs=1, batch_size=128, verbose=0).model
    report["bayesian_mf"]["same_draw_as_one_device"] = bool(
        np.allclose(alone.user_factors.numpy(), mirrored.user_factors.numpy(), atol=1e-4)
        and not np.allclose(alone.user_factors.numpy(), 0.0)
    )
    # ials deals its row batches out per replica and all-gathers the solved rows: every
    # row is solved as on one device, so the factors and the loss are the one-device ones.
    alone = train("ials", parts.train, epochs=2, batch_size=64, verbose=0)
    mirrored = train("ials", parts.train, strategy=strategy, epochs=2, batch_size=64, verbose=0)
    report["ials"]["same_as_one_device"] = bool(
        np.allclose(alone.model.user_factors.numpy(), mirrored.model.user_factors.numpy(), atol=1e-5)
        and np.allclose(alone.model.item_factors.numpy(), mirrored.model.item_factors.numpy(), atol=1e-5)
        and np.allclose(alone.history["loss"], mirrored.history["loss"], rtol=1e-5)
        and all(np.array_equal(c.numpy(), mirrored.model.user_factors.values[0].numpy())
                for c in mirrored.model.user_factors.values)
    )
    # Pointwise and rating losses are means over the global batch: two replicas' halves take
    # the one-device step, so the epochs' losses match one device's.
    for name in ("biased_mf", "content_rating", "gmf", "mlp", "neumf"):
        alone = train(name, parts.train, epochs=2, batch_size=128, verbose=0, seed=0).history["loss"]
        both = train(name, parts.train, strategy=strategy, epochs=2, batch_size=128, verbose=0, seed=0).history["loss"]
        report[name]["loss_as_one_device"] = [alone, both] if not np.allclose(alone, both, rtol=1e-4) else True
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
    assert report["bayesian_mf"].pop("same_draw_as_one_device") is True
    assert report["ials"].pop("same_as_one_device") is True
    for name in ("biased_mf", "content_rating", "gmf", "mlp", "neumf"):
        assert report[name].pop("loss_as_one_device") is True, (name, report[name])
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


WORKER = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np
    import tfrec
    from tfrec._keras import tf
    from tfrec.data import split
    from tfrec.training import train

    name, out = sys.argv[1], sys.argv[2]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    data = tfrec.datasets.synthetic(num_users=300, num_items=200, num_interactions=6000, seed=0)
    parts = split(data, "random:0.2", seed=0)
    result = train(name, parts.train, strategy=strategy, epochs=2, batch_size=128, verbose=0, seed=0)
    weights = b"".join(np.asarray(w, np.float32).tobytes() for w in result.model.get_weights())
    with open(out, "w") as handle:
        json.dump({"digest": hashlib.sha256(weights).hexdigest(), "loss": result.history["loss"]}, handle)
    """
)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["implicit_mf", "gmf", "content_tower", "ials"])
def test_multi_worker_training_across_two_local_processes(name, tmp_path) -> None:
    import tfrec
    from tfrec.data import split
    from tfrec.training import train

    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    workers = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = tmp_path / f"worker{index}.json"
        command = [sys.executable, "-c", WORKER, name, str(out)]
        workers.append((subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True), out))
    results = []
    for process, out in workers:
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.read_text()))
    assert results[0]["digest"] == results[1]["digest"], "the workers ended with different weights"
    data = tfrec.datasets.synthetic(num_users=300, num_items=200, num_interactions=6000, seed=0)
    single = train(name, split(data, "random:0.2", seed=0).train, epochs=2, batch_size=128, verbose=0, seed=0)
    distributed, alone = results[0]["loss"][-1], single.history["loss"][-1]
    print(name, "multi-worker loss", distributed, "single process", alone)
    if name in ("gmf", "ials"):
        # The same math as one process: gmf's global-batch gradient is the mean of the two
        # workers' halves (its negatives drawn from the same seeds); ials solves the same rows.
        assert abs(distributed - alone) <= 1e-4 * abs(alone)
    else:
        # In-batch softmax: each worker ranks its positives against its own half of the
        # batch, so the loss is about log(2) nats lower (measured 0.692 and 0.673 here).
        assert abs((alone - distributed) - np.log(2)) <= 0.05
