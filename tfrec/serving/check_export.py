"""Checks a SavedModel export through TF Serving's own signature path, importing TensorFlow only.

Run as a script in a fresh process (``python check_export.py EXPORT_DIR [EXPECTED.npz]``):
it must not import tfrec, TensorFlow Recommenders or tf_keras, so that it proves a stock
TF Serving build (which has none of them) can run the export. As ``tensorflow_model_server``
does when started without ``--xla_cpu_compilation_enabled``, it first calls
``tensorflow::DisableXlaCompilation()`` (the symbol the TensorFlow wheel's
``libtensorflow_cc.so.2`` exports), unless the export's metadata says it was made with
``xla`` (a server started with that flag). It loads the export with
``tf.compat.v1.saved_model.loader.load(session, ["serve"], path)``, replays every request
in ``assets.extra/tf_serving_warmup_requests`` by running the signature's tensors by
name (a failing record fails a server's load), checks each request against the rules of
TF Serving's batching session (every input has the batch dimension, all the same number
of rows, at most the shipped ``max_batch_size``; every output has that many rows), checks
every output is finite, and compares each output's dtype, shape and values with the
expected ones.

Exit status 0 and a JSON report on stdout when everything matches; 1 and one line per
problem on stderr otherwise.
"""

from __future__ import annotations

import ctypes
import json
import re
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

PREDICT = "tensorflow/serving/predict"
WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"
FORBIDDEN = ("tfrec", "tensorflow_recommenders", "tf_keras")
METADATA = Path("assets.extra") / "tfrec_metadata.json"
BATCHING = "batching_params.pbtxt"
# tensorflow::DisableXlaCompilation(), mangled: what the server's main() calls.
DISABLE_XLA = "_ZN10tensorflow21DisableXlaCompilationEv"


def disable_xla() -> None:
    """Turns XLA compilation off in this process, as a stock ``tensorflow_model_server`` does."""
    library = Path(tf.sysconfig.get_lib()) / "libtensorflow_cc.so.2"
    getattr(ctypes.CDLL(str(library)), DISABLE_XLA)()


def max_batch_size(export_dir: Path) -> int | None:
    """``max_batch_size`` of the export's per-model batching parameters, if it ships them."""
    path = export_dir / BATCHING
    if not path.is_file():
        return None
    found = re.search(r"max_batch_size\s*\{\s*value:\s*(\d+)\s*\}", path.read_text())
    return int(found.group(1)) if found else None


def reason(err: Exception) -> str:
    """The line of a TensorFlow error that says what went wrong (not its node trace)."""
    noise = ("Graph execution error", "Detected at node", "[[", "{{", "File ", "Stack trace", "Error in")
    lines = [line.strip() for line in str(getattr(err, "message", err)).splitlines() if line.strip()]
    return next((line for line in lines if not line.startswith(noise)), type(err).__name__)


def batching_problems(feed: dict, most: int | None) -> list[str]:
    """What TF Serving's batching session would refuse in a request (batching_session.cc)."""
    ranks = {k: np.asarray(v).ndim for k, v in feed.items()}
    if any(rank == 0 for rank in ranks.values()):
        scalars = sorted(k for k, rank in ranks.items() if rank == 0)
        return [f"inputs {scalars} have no batch dimension (a batching server refuses them)"]
    rows = {np.asarray(v).shape[0] for v in feed.values()}
    if len(rows) > 1:
        return [f"inputs have different 0th-dimension sizes {sorted(rows)} (a batching server refuses them)"]
    if most is not None and rows and max(rows) > most:
        return [f"{max(rows)} rows, more than max_batch_size {most} (a batching server refuses them)"]
    return []


def requests(export_dir: Path) -> list:
    """The PredictRequests of the export's warmup file."""
    path = export_dir / WARMUP
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    out = []
    for record in tf.compat.v1.io.tf_record_iterator(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        out.append(log.predict_log.request)
    return out


def compare(where: str, got: np.ndarray, want: np.ndarray, problems: list[str]) -> None:
    strings = got.dtype.kind in "OSU" and want.dtype.kind in "OSU"
    if got.dtype.kind != want.dtype.kind and not strings:
        problems.append(f"{where}: dtype {got.dtype} but expected {want.dtype}")
    elif got.shape != want.shape:
        problems.append(f"{where}: shape {got.shape} but expected {want.shape}")
    elif got.dtype.kind in "OSU":
        if not np.array_equal(got.astype(bytes), want.astype(bytes)):
            problems.append(f"{where}: values differ from the expected ones")
    elif not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        diff = float(np.nanmax(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        problems.append(f"{where}: values differ (max abs difference {diff:.3g})")


def check(export_dir: Path, expected: dict[str, np.ndarray] | None) -> tuple[dict, list[str]]:
    """Runs every warmup request through the session; returns (report, problems)."""
    problems: list[str] = []
    report: dict = {"export_dir": str(export_dir), "signatures": {}, "requests": 0}
    warmup = requests(export_dir)
    described = export_dir / METADATA
    xla = bool(json.loads(described.read_text()).get("xla")) if described.is_file() else False
    report["xla"] = xla
    if not xla:
        disable_xla()
    most = max_batch_size(export_dir)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(export_dir))
        # The init op is SavedModel plumbing (it initialises tables), not a serving signature.
        signatures = {k: v for k, v in meta.signature_def.items() if k != "__saved_model_init_op"}
        for name, signature in signatures.items():
            report["signatures"][name] = {
                "inputs": sorted(signature.inputs),
                "outputs": sorted(signature.outputs),
                "method": signature.method_name,
            }
            if signature.method_name != PREDICT:
                problems.append(f"signature {name}: method {signature.method_name!r}, expected {PREDICT!r}")
        for number, request in enumerate(warmup):
            name = request.model_spec.signature_name or "serving_default"
            if name not in signatures:
                problems.append(f"request {number}: no signature {name!r}")
                continue
            signature = signatures[name]
            if set(request.inputs) != set(signature.inputs):
                problems.append(
                    f"request {number} ({name}): inputs {sorted(request.inputs)} but the signature takes "
                    f"{sorted(signature.inputs)}"
                )
                continue
            values = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            refused = batching_problems(values, most)
            if refused:
                problems += [f"request {number} ({name}): {p}" for p in refused]
                continue
            feed = {signature.inputs[k].name: v for k, v in values.items()}
            fetch = {k: v.name for k, v in signature.outputs.items()}
            try:
                outputs = session.run(fetch, feed)
            except (tf.errors.OpError, ValueError) as err:  # a failing record fails a server's load
                problems.append(f"request {number} ({name}) failed: {reason(err)}")
                continue
            report["requests"] += 1
            rows = len(next(iter(values.values()))) if values else 0
            for key, value in outputs.items():
                value = np.asarray(value)
                if value.ndim == 0 or value.shape[0] != rows:
                    problems.append(f"request {number} ({name}) output {key!r}: shape {value.shape}, not {rows} rows")
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    problems.append(f"request {number} ({name}) output {key!r}: not finite (inf or NaN)")
            if expected is None:
                continue
            for key, value in outputs.items():
                label = f"{number}/{key}"
                if label not in expected:
                    problems.append(f"request {number} ({name}): output {key!r} was not expected")
                    continue
                compare(
                    f"request {number} ({name}) output {key!r}", np.asarray(value), expected[label], problems
                )
            missing = {k.split("/", 1)[1] for k in expected if k.startswith(f"{number}/")} - set(outputs)
            if missing:
                problems.append(f"request {number} ({name}): outputs {sorted(missing)} missing")
    if not warmup:
        problems.append("the warmup file holds no request")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    if loaded:
        problems.append(f"the check imported {loaded[:3]}: the export must not need them")
    return report, problems


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: check_export.py EXPORT_DIR [EXPECTED.npz]", file=sys.stderr)
        return 2
    export_dir = Path(argv[1])
    expected = None
    if len(argv) == 3:
        with np.load(argv[2], allow_pickle=False) as data:
            expected = {k: data[k] for k in data.files}
    try:
        report, problems = check(export_dir, expected)
    except Exception as err:  # noqa: BLE001 - any failure to load or run is a failed check, in one line
        print(
            f"{export_dir}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            file=sys.stderr,
        )
        return 1
    for problem in problems[:10]:
        print(f"{export_dir}: {problem}", file=sys.stderr)
    if len(problems) > 10:
        print(f"{export_dir}: and {len(problems) - 10} more problems", file=sys.stderr)
    print(json.dumps(report))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
