"""A killed `tfrec train` resumes from its last finished epoch and ends like an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfrec._keras import keras
from tfrec.data import split
from tfrec.training import train

ARGS = ["train", "implicit_mf", "--epochs", "6", "--batch-size", "256", "--seed", "1", "--quiet"]


def _run(output: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "tfrec", *ARGS, "--output", str(output)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_killed_training_resumes_and_matches_an_uninterrupted_run(tmp_path) -> None:
    output = tmp_path / "run"
    first = _run(output)
    deadline = time.time() + 600
    while time.time() < deadline and not list((output / "backup").rglob("checkpoint")):
        assert first.poll() is None, (
            f"training ended before a checkpoint appeared: {first.stderr.read()[-2000:]}"
        )
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (output / "metrics.json").exists()

    resumed = _run(output)
    _, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-3000:]
    report = json.loads((output / "metrics.json").read_text())
    assert report["epochs_run"][0] >= 1, "the second run did not resume"
    assert report["epochs_run"][-1] == 5 and report["config"]["epochs"] == 6
    assert not (output / "backup").exists() or not any((output / "backup").iterdir())

    fresh = _run(tmp_path / "fresh")
    _, err = fresh.communicate(timeout=900)
    assert fresh.returncode == 0, err[-3000:]
    baseline = json.loads((tmp_path / "fresh" / "metrics.json").read_text())
    assert baseline["epochs_run"] == list(range(6))
    # The resumed run trains its later epochs on the orders the uninterrupted run used.
    for name in ("recall@10", "ndcg@10"):
        assert abs(report["metrics"][name] - baseline["metrics"][name]) <= 1e-6, (report, baseline)


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None) -> None:
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill")


@pytest.mark.parametrize("name", ["implicit_mf", "gmf", "ials"])
def test_an_interrupted_fit_resumes_to_the_uninterrupted_result(name, small, tmp_path) -> None:
    parts = split(small, "random:0.2", seed=0)
    settings = dict(epochs=5, seed=3, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(name, parts.train, backup_dir=tmp_path / "backup", callbacks=[Interrupt()], **settings)
    resumed = train(name, parts.train, backup_dir=tmp_path / "backup", **settings)
    assert resumed.epochs_run == [2, 3, 4]  # epochs 0 and 1 were backed up before the kill
    straight = train(name, parts.train, **settings)
    users, items = parts.test.frame["user_id"].to_numpy()[:100], parts.test.frame["item_id"].to_numpy()[:100]
    np.testing.assert_allclose(resumed.model.score(users, items), straight.model.score(users, items), atol=1e-6)
