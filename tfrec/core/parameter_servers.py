"""Training under ``tf.distribute.ParameterServerStrategy``: the strategy over the cluster
``TF_CONFIG`` names (tables split over the servers), the worker and server processes, a
local cluster on 127.0.0.1, faults in the cluster, and the split tables gathered back."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

from tfrec._keras import tf
from tfrec.errors import TfrecError

MIN_SHARD_BYTES = 256 << 10


def parameter_server_strategy(
    min_shard_bytes: int = MIN_SHARD_BYTES, cluster_resolver=None, wait: float = 120.0
) -> tf.distribute.experimental.ParameterServerStrategy:
    """``ParameterServerStrategy`` over the cluster ``TF_CONFIG`` names, this process its
    coordinator (``chief``), with every variable of ``2 * min_shard_bytes`` or more split
    by rows into up to one part per parameter server (``MinSizePartitioner``): embedding
    tables larger than one machine live spread over the servers, and workers read and
    update only the rows a batch touches.

    Args:
        min_shard_bytes: Smallest part a variable is split into.
        cluster_resolver: The cluster; None reads ``TF_CONFIG``.
        wait: Seconds to wait for every worker and server to accept connections.

    Raises:
        TfrecError: a task did not answer within ``wait`` seconds.
    """
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")  # a lost task fails calls, not hangs them
    resolver = cluster_resolver or tf.distribute.cluster_resolver.TFConfigClusterResolver()
    tasks = resolver.cluster_spec().as_dict()
    servers = len(tasks.get("ps", []))
    _wait_for(tasks, wait)
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=int(min_shard_bytes), max_shards=max(servers, 1)
    )
    try:
        return tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as err:
        raise TfrecError(f"cannot reach the cluster TF_CONFIG names: {_first_line(err)}") from err


def _wait_for(tasks: dict, seconds: float) -> None:
    """Waits until every worker and parameter server accepts a connection."""
    deadline, told = time.monotonic() + seconds, False
    for job in ("worker", "ps"):
        for index, address in enumerate(tasks.get(job, [])):
            host, port = address.rsplit(":", 1)
            while True:
                try:
                    socket.create_connection((host, int(port)), timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TfrecError(
                            f"{job} {index} at {address} (TF_CONFIG) did not answer within {seconds:.0f}s; "
                            "start it with `tfrec cluster-task` and the same cluster in its TF_CONFIG"
                        ) from None
                    if not told:
                        print(f"tfrec: waiting for {job} {index} at {address} ...", file=sys.stderr, flush=True)
                        told = True
                    time.sleep(0.5)


def _first_line(err: Exception) -> str:
    return (
        (getattr(err, "message", "") or str(err)).strip().splitlines()[0]
        if str(err).strip()
        else type(err).__name__
    )


class _LostWorkers(logging.Filter):
    """Turns the cluster coordinator's error log into one line per lost worker (it retries
    that worker's steps on the others); a lost server is the error training stops with."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        lost = re.match(r"Worker /job:worker/replica:\d+/task:(\d+) failed", text)
        if lost and lost.group(1) not in self.lost:
            self.lost.add(lost.group(1))
            print(f"tfrec: worker {lost.group(1)} stopped answering; the other workers take its steps",
                  file=sys.stderr, flush=True)  # fmt: skip
        return "coordinator" not in os.path.basename(record.pathname)  # the rest: what we say, or the error


@contextlib.contextmanager
def cluster_failures(backup_dir=None):
    """Around training under parameter servers: a lost worker is one line on stderr (its
    steps go to the others); a lost parameter server, whose part of the tables is gone,
    stops training with a :class:`TfrecError` naming it and how to resume."""
    quiet = _LostWorkers()
    logger = tf.get_logger()
    logger.addFilter(quiet)
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError,
            tf.errors.DeadlineExceededError) as err:  # fmt: skip
        text = str(err)
        server = re.search(r"/job:ps/replica:\d+/task:(\d+)", text)
        who = f"parameter server {server.group(1)}" if server else "a cluster task"
        resume = (
            f"restart it and run the same command again: training resumes from the last finished epoch "
            f"saved in {backup_dir}"
            if backup_dir is not None
            else "restart it and train again"
        )
        raise TfrecError(
            f"{who} stopped answering during training, so its part of the tables is lost; {resume}"
        ) from err
    finally:
        logger.removeFilter(quiet)


def is_parameter_server(strategy) -> bool:
    """Whether ``strategy`` is a ``ParameterServerStrategy`` (workers fed by a coordinator)."""
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


# What a cluster task's server exposes, said wherever one starts.
EXPOSURE = (
    "TensorFlow's gRPC server listens on all interfaces, is unauthenticated and runs any op a "
    "client sends (reading and writing files included): keep cluster tasks on a private network "
    "or behind a firewall"
)


def exposed_addresses() -> list[str]:
    """This host's interface addresses outside the loopback, private, link-local and shared
    ranges (``ipaddress``'s ``is_global``): where a server on all interfaces is reachable
    from the internet. Linux: read from /proc/net; elsewhere from the host name."""
    found: set[str] = set()
    try:
        lines = open("/proc/net/fib_trie").read().splitlines()
        found |= {lines[i - 1].split()[-1] for i, line in enumerate(lines) if "/32 host LOCAL" in line and i}
    except OSError:
        try:
            found |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    try:
        for line in open("/proc/net/if_inet6").read().splitlines():
            raw = line.split()[0]
            found.add(":".join(raw[i : i + 4] for i in range(0, 32, 4)))
    except OSError:
        pass
    out = []
    for text in sorted(found):
        try:
            if ipaddress.ip_address(text.split("%")[0]).is_global:
                out.append(text)
        except ValueError:
            continue
    return out


def refuse_public_exposure(allow_public: bool, what: str) -> None:
    """Refuses to start a cluster server on a host with a public address unless asked.

    Raises:
        TfrecError: the host has such an address and ``allow_public`` is False (one line).
    """
    public = exposed_addresses()
    if public and not allow_public:
        raise TfrecError(
            f"{what}: not started: this host has public addresses ({', '.join(public[:3])}) and {EXPOSURE}; "
            "pass --allow-public-interfaces (allow_public=True) to start it anyway"
        )


def serve_cluster_task(cluster_resolver=None, ready=None, allow_public: bool = False) -> None:
    """Runs this process as the worker or parameter server ``TF_CONFIG`` names, until it
    is stopped (a ``tf.distribute.Server`` the coordinator sends work and variables to).

    TensorFlow's server binds every interface (its gRPC server is built with
    ``0.0.0.0:port``, whatever address ``TF_CONFIG`` names), is unauthenticated, and runs
    the ops a client sends; so it refuses to start on a host with a public address unless
    ``allow_public``.

    Args:
        cluster_resolver: The cluster; None reads ``TF_CONFIG``.
        ready: Called with ``"all interfaces, port N"`` once it serves.
        allow_public: Start even where the host has a public address.

    Raises:
        TfrecError: the host has a public address and ``allow_public`` is False.
    """
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    resolver = cluster_resolver or tf.distribute.cluster_resolver.TFConfigClusterResolver()
    job, index = resolver.task_type, int(resolver.task_id or 0)
    refuse_public_exposure(allow_public, f"cluster task {job} {index}")
    spec = resolver.cluster_spec()
    server = tf.distribute.Server(
        spec, job_name=job, task_index=index, protocol=resolver.rpc_layer or "grpc", start=True
    )
    if ready is not None:
        ready(f"all interfaces, port {spec.task_address(job, index).rsplit(':', 1)[-1]}")
    server.join()


def dense_weights(model) -> list:
    """``model.get_weights()`` with each variable split over parameter servers gathered
    into one array, in the order an unsharded copy of the model lists its weights."""
    values, seen = [], set()
    for variable in model.weights:
        container = getattr(variable, "_sharded_container", None)
        if container is None:
            values.append(variable.numpy())
            continue
        sharded = container()
        if id(sharded) not in seen:
            seen.add(id(sharded))
            values.append(tf.concat([part.read_value() for part in sharded.variables], axis=0).numpy())
    return values


def placement(model) -> dict[str, list[str]]:
    """The parameter-server devices holding each part of every split variable, by the
    variable's path through the model's layers (``{"query_tower/embedding/embeddings":
    [".../job:ps/replica:0/task:1/device:CPU:0", ...]}``); empty when none is split."""
    parts: dict[str, list[str]] = {}

    def walk(layer, path: str) -> None:
        for variable in layer._trainable_weights + layer._non_trainable_weights:
            if getattr(variable, "_sharded_container", None) is not None:  # one part of a split variable
                name = f"{path}/{variable.name.split('/part_')[0]}".lstrip("/")
                parts.setdefault(name, []).append(variable.device)
        for child in layer._flatten_layers(include_self=False, recursive=False):
            walk(child, f"{path}/{child.name}")

    walk(model, "")
    return parts


class LocalCluster:
    """A parameter-server cluster of processes on this machine (see :func:`local_cluster`).

    Attributes:
        cluster: ``TF_CONFIG``'s ``cluster`` part: ``chief`` (an address for the caller),
            ``worker`` and ``ps`` lists of ``127.0.0.1:port``.
        tasks: The running processes by task (``"worker 0"``, ``"ps 1"``).
        logs: The folder holding each task's output (``ps-1.log``).
    """

    def __init__(self, cluster: dict, tasks: dict, logs: str) -> None:
        self.cluster, self.tasks, self.logs = cluster, tasks, logs

    def tf_config(self, job: str = "chief", index: int = 0) -> str:
        """The ``TF_CONFIG`` value for task ``job`` ``index`` of this cluster."""
        return json.dumps({"cluster": self.cluster, "task": {"type": job, "index": index}})


@contextlib.contextmanager
def local_cluster(
    workers: int = 2, servers: int = 2, logs: str | None = None, wait: float = 120.0, allow_public: bool = False
):
    """Starts ``workers`` workers and ``servers`` parameter servers as ``python -m tfrec
    cluster-task`` processes on 127.0.0.1, waits until each serves, yields a
    :class:`LocalCluster` and stops every process it started on exit: the cluster layout of
    a real deployment, on one machine, for trying and testing parameter-server training.

    The tasks' servers listen on all interfaces (TensorFlow's, unauthenticated), so like
    ``tfrec cluster-task`` it refuses to start on a host with a public address unless
    ``allow_public``.

    Args:
        workers: Worker processes.
        servers: Parameter-server processes.
        logs: Folder for each task's output; None: a temporary folder removed on exit.
        wait: Seconds for every task to start serving.
        allow_public: Start even where the host has a public address.

    Raises:
        TfrecError: a task did not start, or the host has a public address and
            ``allow_public`` is False.

    Example:
        >>> with local_cluster() as cluster:
        ...     os.environ["TF_CONFIG"] = cluster.tf_config()  # this process: the chief
        ...     result = tfrec.training.train("two_tower", split.train, strategy=parameter_server_strategy())
    """
    refuse_public_exposure(allow_public, "local_cluster")
    ports = _free_ports(1 + workers + servers)
    cluster = {
        "chief": [f"127.0.0.1:{ports[0]}"],
        "worker": [f"127.0.0.1:{p}" for p in ports[1 : 1 + workers]],
        "ps": [f"127.0.0.1:{p}" for p in ports[1 + workers :]],
    }
    folder = tempfile.TemporaryDirectory(prefix="tfrec-cluster-") if logs is None else None
    where = folder.name if folder is not None else str(logs)
    os.makedirs(where, exist_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    running = LocalCluster(cluster, processes, where)
    quiet = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    try:
        for job, count in (("ps", servers), ("worker", workers)):
            for index in range(count):
                with open(os.path.join(where, f"{job}-{index}.log"), "w") as out:
                    processes[f"{job} {index}"] = subprocess.Popen(
                        [sys.executable, "-m", "tfrec", "cluster-task",
                         *(["--allow-public-interfaces"] if allow_public else [])],
                        env={**quiet, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": running.tf_config(job, index)},
                        stdout=out, stderr=subprocess.STDOUT,
                    )  # fmt: skip
        deadline = time.monotonic() + wait
        for name, process in processes.items():
            with open(os.path.join(where, name.replace(" ", "-") + ".log")) as log:
                while "serving on" not in log.read():
                    log.seek(0)
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        told = log.read().strip().splitlines()
                        raise TfrecError(f"cluster task {name} did not start: {told[-1] if told else 'no output'}")
                    time.sleep(0.2)
        yield running
    finally:
        for process in processes.values():
            process.kill()
        for process in processes.values():
            process.wait(timeout=30)
        if folder is not None:
            folder.cleanup()


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that nothing listens on now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
