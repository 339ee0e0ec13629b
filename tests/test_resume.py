"""A killed `tfrec train` resumes from its last finished epoch and ends like an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    for name in ("recall@10", "ndcg@10"):
        assert abs(report["metrics"][name] - baseline["metrics"][name]) <= 0.25 * baseline["metrics"][name]
