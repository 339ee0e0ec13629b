"""Helpers shared by the benchmark scripts: machine description and result writing."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STARTED = time.perf_counter()


def _code_commit() -> str:
    """HEAD when the script started (its code), ``+changes`` if tfrec/ or bench/ scripts
    differed from it then."""
    root = Path(__file__).resolve().parents[1]
    git = ["git", "-C", str(root)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run([*git, "status", "--porcelain", "--", "tfrec", "bench/*.py"], capture_output=True,
                             text=True).stdout.strip()  # fmt: skip
    return commit + ("+changes" if changed else "")


COMMIT = _code_commit()
SHARED_DATA = Path(
    os.environ.get("TFREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def machine() -> dict:
    """CPU, cores, memory and package versions, for the results' header."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for package in (
        "tensorflow",
        "tf-keras",
        "tensorflow-recommenders",
        "numpy",
        "pandas",
        "scikit-surprise",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "versions": versions,
        "commit": COMMIT,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "run_seconds": round(time.perf_counter() - STARTED, 1),
    }


def reset_peak() -> None:
    """Resets this process's resident high-water mark (Linux ``/proc/self/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_gib() -> float:
    """This process's resident high-water mark (``VmHWM``) in GiB since the last reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def write(name: str, payload: dict, markdown: str) -> None:
    """Writes ``results/<name>.json`` and ``results/<name>.md``."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table; floats with 4 decimals."""

    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def epoch_timer():
    """A Keras callback whose ``seconds`` lists each epoch's wall-clock time (Keras is
    imported here, so the scripts that measure in a child process load it there)."""
    from tfrec._keras import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def pooled_rmse(errors: list, seed: int = 0) -> dict:
    """RMSE over several test parts' errors (predicted - true) pooled, every rating once,
    with a 95% bootstrap interval over ratings."""
    import numpy as np

    from tfrec.evaluation.bootstrap import bootstrap_interval

    squared = np.concatenate([np.asarray(e, np.float64) ** 2 for e in errors])
    low, high = bootstrap_interval([squared], np.sqrt, seed=seed)
    return {"rmse": float(np.sqrt(squared.mean())), "low": low, "high": high, "ratings": len(squared)}
