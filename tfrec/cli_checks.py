"""Checks of the command line's inputs and the run's guard (``tfrec-run.json``): each
failure is a :class:`UserError`, reported in one line with exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

INT32_MAX = 2**31 - 1
RUN_FILE = "tfrec-run.json"
# Held (flock) while a run writes its output folder; the kernel drops it when the process dies.
LOCK_FILE = ".tfrec-lock"
# Under this much free space after a failed write, the failure is taken for a full disk.
FULL_DISK_BYTES = 64 << 20


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


def check_memory(name: str, config, data) -> None:
    """Refuses a model whose weights (with the optimizer's slots) and working memory would
    not fit this machine's memory (``data``: the model's ModelData)."""
    from tfrec.training import memory_estimate

    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return
    need = memory_estimate(name, config, data)
    if need > have:
        raise UserError(
            f"{name} with this config would need about {need / 2**30:,.1f} GiB (weights, optimizer slots and "
            f"working memory) for {len(data.users):,} users and {len(data.items):,} items; this machine has "
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


def checkpointed(backup: Path) -> bool:
    """Whether a run's backup folder holds a checkpoint (more than the run's key)."""
    return backup.is_dir() and any(p.is_file() and p.name != RUN_FILE for p in backup.rglob("*"))


def check_resume(backup: Path, key: dict[str, object]) -> None:
    """Refuses to resume a backup that another run left (other model, data, settings)."""
    if not checkpointed(backup):
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


class Interrupted(Exception):
    """Ctrl-C during a run: reported in one line (exit code 130), with how to resume."""


@contextlib.contextmanager
def writing(output: Path, backup: Path | None = None) -> Iterator[None]:
    """Holds ``output`` for one run: created if missing, locked against a second run
    writing it at the same time (the lock dies with the process), and on failure:

    - a full disk is named as such, and the partial files TensorFlow's savers leave
      (``*_temp`` folders) are removed;
    - Ctrl-C becomes :class:`Interrupted`, saying whether ``backup`` lets a rerun resume;
    - a folder this run created and left without a file is removed again.
    """
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    lock_path = output / LOCK_FILE
    handle = open(lock_path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise UserError(
            f"argument --output: {output} is being written by another tfrec run (pid {owner}); wait for it "
            "to end or choose another --output"
        ) from err
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    except KeyboardInterrupt as err:
        resume = (
            f"rerun the same command to resume from the last finished epoch in {backup}"
            if backup is not None and checkpointed(backup)
            else "nothing was checkpointed yet"
        )
        raise Interrupted(f"interrupted; {resume}") from err
    except BaseException as err:
        if _disk_full(err, output):
            removed = _remove_partial_saves(output)
            partial = f"; {removed} partial file(s) removed" if removed else ""
            raise UserError(
                f"no space left on device while writing {output} ({_free(output) / 2**20:,.1f} MiB free{partial}); "
                "free some space and rerun"
            ) from err
        raise
    finally:
        if backup is not None and not checkpointed(backup) and backup.is_dir():
            shutil.rmtree(backup)  # the run's key and empty folders: nothing to resume
        lock_path.unlink(missing_ok=True)
        handle.close()
        if created and not any(p.is_file() for p in output.rglob("*")):
            shutil.rmtree(output, ignore_errors=True)  # only the folders this run made, still empty


def _free(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def _disk_full(err: BaseException, output: Path) -> bool:
    """A write that failed for want of space: ENOSPC, or TensorFlow's ResourceExhausted
    from a saver (SaveV2 / MergeV2Checkpoints, whose message may not say why) with the
    output's file system nearly full."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    if "No space left on device" in str(err):
        return True
    return type(err).__name__ == "ResourceExhaustedError" and _free(output) < FULL_DISK_BYTES


def _remove_partial_saves(output: Path) -> int:
    """Removes what an interrupted TensorFlow save leaves (``*_temp`` folders and files)."""
    partial = [p for p in output.rglob("*_temp*") if not p.is_symlink()]
    count = 0
    for path in sorted(partial, key=lambda p: len(p.parts)):
        if path.is_dir():
            count += sum(1 for q in path.rglob("*") if q.is_file())
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
            count += 1
    return count


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
