"""Checks of the command line's inputs and the run's guard (``tfrec-run.json``): each
failure is a :class:`UserError`, reported in one line with exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

INT32_MAX = 2**31 - 1
RUN_FILE = "tfrec-run.json"


# A config file written by `tfrec tune` is a few hundred bytes; read at most this much.
CONFIG_BYTES = 1 << 20


class UserError(Exception):
    """An error in the command line or its inputs: reported in one line, exit code 2."""


def bounded(value: int | None, flag: str, low: int, high: int = INT32_MAX) -> None:
    if value is not None and not low <= value <= high:
        raise UserError(f"argument {flag}: must be an integer in [{low}, {high}], got {value}")


def overrides(pairs: Sequence[str], epochs: int | None, batch_size: int | None) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"argument --set: expected KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    bounded(epochs, "--epochs", 1, 1_000_000)
    bounded(batch_size, "--batch-size", 1)
    if epochs is not None:
        overrides["epochs"] = epochs
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    return overrides


def config_file(path: str | None, model: str) -> dict[str, object]:
    """The config values of a ``tfrec tune`` file (JSON only) for ``model``; {} without one."""
    if path is None:
        return {}
    try:
        if not Path(path).is_file():
            raise UserError(f"argument --config: {path} is not a regular file")
        with open(path, "rb") as handle:
            raw = handle.read(CONFIG_BYTES + 1)
        if len(raw) > CONFIG_BYTES:
            raise UserError(f"argument --config: {path} is over {CONFIG_BYTES // 1024} KiB (a tfrec tune config is small)")
        content = json.loads(raw.decode("utf-8"))
    except OSError as err:
        raise UserError(f"argument --config: cannot read {path}: {err.strerror or err}") from err
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise UserError(f"argument --config: {path} is not JSON: {reason}") from err
    if not isinstance(content, dict) or not isinstance(content.get("config"), dict):
        raise UserError(f"argument --config: {path} has no 'config' object (write it with `tfrec tune`)")
    if content.get("model", model) != model:
        raise UserError(f"argument --config: {path} is for {content['model']!r}, not {model!r}")
    values = content["config"]
    # The same bounds as the flags of the same name.
    for key, low, high in (("epochs", 1, 1_000_000), ("batch_size", 1, INT32_MAX)):
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            raise UserError(f"argument --config: {key} must be an integer in [{low}, {high}], got {value!r}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def check_memory(config, data) -> None:
    """Refuses embedding tables (with two optimizer slots) larger than this machine's memory."""
    dim = getattr(config, "embedding_dim", None)
    if not isinstance(dim, int):
        return
    rows = data.num_users + data.num_items + 2
    need = rows * dim * 4 * 3
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return
    if need > have:
        raise UserError(
            f"--set embedding_dim={dim}: the embedding tables would need about {need / 2**30:,.1f} GiB "
            f"({rows:,} rows x {dim} x float32 x 3 with the optimizer's slots); this machine has "
            f"{have / 2**30:,.1f} GiB"
        )


def run_key(args: argparse.Namespace, overrides: dict[str, object], spec: str) -> dict[str, object]:
    """What must match for a rerun to resume a run's backup."""
    return {
        "model": args.model,
        "dataset": args.dataset,
        "data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
        "split": spec,
        "validation": args.validation,
        "seed": args.seed,
        "overrides": {k: str(v) for k, v in sorted(overrides.items())},
        "strategy": args.strategy,
        "catch_up": args.catch_up,
    }


def check_resume(backup: Path, key: dict[str, object]) -> None:
    """Refuses to resume a backup that another run left (other model, data, settings)."""
    if not backup.is_dir() or not any(backup.iterdir()):
        return
    path = backup / RUN_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = None
    if stored == key:
        return
    if stored is None:
        what = "an interrupted run whose settings were not recorded"
    else:
        changed = sorted(k for k in key if stored.get(k) != key[k])
        what = "an interrupted run with other " + ", ".join(
            f"{k} ({stored.get(k)!r}, now {key[k]!r})" for k in changed
        )
    raise UserError(
        f"{backup} holds {what}; rerun with the same arguments to resume it, or delete {backup} "
        "to start fresh"
    )


def write_json(path: Path, report: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)


def strategy(name: str, min_shard_bytes: int | None = None, model: str | None = None):
    """The tf.distribute strategy named on the command line (None: the default one)."""
    if min_shard_bytes is not None:
        if name != "parameter-server":
            raise UserError("argument --min-shard-bytes: only with --strategy parameter-server")
        bounded(min_shard_bytes, "--min-shard-bytes", 1)
    if name == "default":
        return None
    flag = f"argument --strategy {name}"
    if name == "multi-worker":
        cluster_config(os.environ.get("TF_CONFIG"), flag, ("worker", "chief"), needs=("worker",))
    if name == "parameter-server":
        cluster_config(os.environ.get("TF_CONFIG"), flag, ("chief",), needs=("worker", "ps"))
    from tfrec._keras import tf
    from tfrec.core import parameter_servers
    from tfrec.training import check_parameter_servers

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if model is not None:
        check_parameter_servers(model)  # before the strategy connects to the cluster
    return parameter_servers.parameter_server_strategy(
        **({} if min_shard_bytes is None else {"min_shard_bytes": min_shard_bytes})
    )


def cluster_config(text: str | None, flag: str, tasks: tuple[str, ...], needs: tuple[str, ...] = ()) -> str:
    """Checks TF_CONFIG: a cluster with the ``needs`` jobs ('host:port' lists) and this
    process's task, one of ``tasks``, in it; returns the task as ``"worker 0"``."""
    if not text:
        raise UserError(f"{flag}: set TF_CONFIG to the cluster and this process's task")
    try:
        config = json.loads(text)
    except ValueError as err:
        raise UserError(f"{flag}: TF_CONFIG is not valid JSON: {err}") from err
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    cluster = cluster if isinstance(cluster, dict) else {}
    for job in needs:
        addresses = cluster.get(job)
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and ":" in a for a in addresses)
        ):
            raise UserError(f"{flag}: TF_CONFIG needs cluster.{job}, a list of 'host:port' addresses")
    if (
        not isinstance(task, dict)
        or not isinstance(task.get("type"), str)
        or not isinstance(cluster.get(task["type"]), list)
        or not isinstance(task.get("index"), int)
    ):
        raise UserError(f"{flag}: TF_CONFIG needs task.type (e.g. 'worker') and an integer task.index")
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise UserError(f"{flag}: TF_CONFIG task.index {task['index']} is outside cluster.{task['type']}")
    if task["type"] not in tasks:
        raise UserError(f"{flag}: this process is TF_CONFIG's {task['type']}, expected {' or '.join(tasks)}")
    return f"{task['type']} {task['index']}"


def ks(text: str) -> tuple[int, ...]:
    message = f"argument --k: expected comma-separated positive integers, got {text!r}"
    try:
        ks = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise UserError(message) from err
    if not ks or min(ks) <= 0 or max(ks) > INT32_MAX:
        raise UserError(message)
    return ks


def check_writable(output: Path, flag: str) -> None:
    """The folder exists and is writable, or could be created; nothing is left behind.

    Probes with a temporary folder in the nearest existing ancestor, removed at once, so
    a run that fails later leaves no empty output folder.
    """
    probe = output
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        if probe.exists() and not probe.is_dir():
            raise NotADirectoryError(f"{probe} is a file")
        os.rmdir(tempfile.mkdtemp(prefix=".tfrec-write-test-", dir=probe))
        if probe != output:
            # The folders below must be creatable too (e.g. /proc accepts no new names).
            first = output
            while first.parent != probe:
                first = first.parent
            first.mkdir()
            first.rmdir()
    except OSError as err:
        raise UserError(f"argument {flag}: cannot write to {output}: {err.strerror or err}") from err
