"""Latency of `recommend` as TF Serving runs it: through TensorFlow's C API, in one script run.

Exports an `implicit_mf` model (64-d; weights as initialised: latency does not depend on
them) over a 3,706-item catalogue (MovieLens-1M size) and a generated 1,000,000-item
catalogue with the default export options (no XLA: what a stock `tensorflow_model_server`
loads as started), and times `recommend` (k = 10) at 1 and 256 users per request:

- **C API** (the path TF Serving's C++ takes): `bench/serving_client.c`, compiled here
  with gcc against the headers and `libtensorflow_cc.so.2` the TensorFlow wheel ships,
  calls `tensorflow::DisableXlaCompilation()` as the server's `main()` does, loads the
  export with `TF_LoadSessionFromSavedModel` and times `TF_SessionRun` on the signature's
  tensors (p50, p99). Without a C compiler this part is skipped, and the results say so.
- **session floor**: the same client on an export whose one signature returns its input
  (`tf.identity` of a string[B]): the fixed cost of a session call.
- **NumPy brute force** on the same embeddings (the user's row of the query table, a dot
  with the candidate matrix, argpartition + sort of the top 10) at the machine's default
  BLAS threads, and the Python client (`tfrec.serving.ExportedModel`) at batch 1.
- **first calls after load**: a fresh process loads the export through the v1 session
  path with XLA disabled, replays its warmup records (as the server does at load), then
  times the first call of each request shape (batch sizes, k, exclusions, similar_items,
  the opt-out) against that shape's median over the next calls.

Blocks of each measurement alternate (3 rounds), so all of them see the same machine state.

Usage: python bench/serving_speed.py [--repeats 300]
Writes bench/results/serving_speed.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, table, write

import tfrec
from tfrec._keras import tf

CLIENT = Path(__file__).with_name("serving_client.c")
ROUNDS = 3


def numpy_top10(queries: np.ndarray, candidates: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Brute-force top-10 positions per query row (chunks bound the score matrix)."""
    found = []
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ candidates.T
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        found.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(found)


def build_client(folder: Path) -> Path | None:
    """``serving_client.c`` compiled against the wheel's C API, or None without a compiler."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        return None
    lib = Path(tf.sysconfig.get_lib())
    binary = folder / "serving_client"
    subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(CLIENT), f"-I{lib / 'include'}", f"-L{lib}",
         "-l:libtensorflow_cc.so.2", "-l:libtensorflow_framework.so.2", f"-Wl,-rpath,{lib}"],
        check=True,
    )  # fmt: skip
    return binary


def floor_export(folder: Path) -> Path:
    """A SavedModel whose one signature returns its string[B] input: a session call's floor."""
    module = tf.Module()
    module.identity = tf.function(
        lambda user_id: {"item_ids": tf.identity(user_id)},
        input_signature=[tf.TensorSpec([None], tf.string, "user_id")],
    )
    path = folder / "floor" / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.identity})
    return path


def c_api_times(binary: Path, path: Path, signature: str, ids: Path, batch: int, repeats: int) -> np.ndarray:
    """Per-call milliseconds of ``signature`` (k = 10) through the C client, after 20
    discarded calls (a server's warmup replay)."""
    served = tfrec.serving.ExportedModel(path, trust=True)  # both exports are this script's own
    spec = served.signatures[signature]
    served.close()
    k = spec.inputs["k"].name if "k" in spec.inputs else "-"
    outputs = [spec.outputs[name].name for name in sorted(spec.outputs)]
    done = subprocess.run(
        [str(binary), str(path), "stock", spec.inputs["user_id"].name, k, "10", str(batch), str(repeats + 20),
         str(ids), *outputs],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return np.asarray([float(line) for line in done.stdout.split()][20:])


FIRST_CALL_SHAPES = (
    ("recommend", 1, 10), ("recommend", 1, 20), ("recommend", 1, 100), ("recommend", 3, 5),
    ("recommend", 7, 10), ("recommend", 100, 10), ("recommend", 256, 10),
    ("recommend_excluding", 1, 10), ("recommend_excluding", 16, 50), ("recommend_including_seen", 1, 10),
    ("similar_items", 1, 10), ("similar_items", 50, 20), ("score", 1, 0), ("query_embedding", 1, 0),
)  # fmt: skip


def first_calls(path: Path, calls: int = 30) -> dict[str, dict[str, float]]:
    """In this (fresh) process: XLA disabled as the server does, the export loaded through
    the v1 session path, its warmup replayed; then each shape's first call and its median."""
    from tfrec.serving.check_export import disable_xla, requests

    disable_xla()
    rng = np.random.default_rng(0)
    results = {}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
        signatures = meta.signature_def
        for request in requests(path):  # the server's warmup replay
            spec = signatures[request.model_spec.signature_name or "serving_default"]
            feed = {spec.inputs[k].name: tf.make_ndarray(v) for k, v in request.inputs.items()}
            session.run({k: v.name for k, v in spec.outputs.items()}, feed)
        users = [f"u{i}" for i in range(1000)]
        items = [f"i{j}" for j in range(1000)]
        width = int(signatures["recommend_excluding"].inputs["exclude_item_ids"].tensor_shape.dim[1].size)
        for signature, rows, k in FIRST_CALL_SHAPES:
            spec = signatures[signature]
            times = []
            for _ in range(calls + 1):
                values = {
                    "user_id": np.asarray(rng.choice(users, rows), dtype=object),
                    "item_id": np.asarray(rng.choice(items, rows), dtype=object),
                    "k": np.full(rows, k, np.int32),
                    "exclude_item_ids": np.asarray([[*rng.choice(items, 3), *[""] * (width - 3)]] * rows, dtype=object),
                }
                feed = {spec.inputs[name].name: values[name] for name in spec.inputs}
                start = time.perf_counter()
                session.run({key: v.name for key, v in spec.outputs.items()}, feed)
                times.append((time.perf_counter() - start) * 1000.0)
            label = f"{signature} {rows} row{'s' if rows > 1 else ''}" + (f", k={k}" if "k" in spec.inputs else "")
            results[label] = {"first_ms": times[0], "median_ms": float(np.median(times[1:]))}
    return results


def measured(binary, path, ids, floor, served, users, query_table, candidates, repeats, rng) -> dict:
    """Every latency of one catalogue, blocks alternating over :data:`ROUNDS` rounds."""
    samples: dict[str, list] = {key: [] for key in ("c1", "c256", "floor", "numpy1", "numpy256", "python1")}
    per_round = max(repeats // ROUNDS, 10)
    for _ in range(ROUNDS):
        if binary is not None:
            samples["c1"].append(c_api_times(binary, path, "recommend", ids, 1, per_round))
            samples["c256"].append(c_api_times(binary, path, "recommend", ids, 256, max(per_round // 10, 10)))
            samples["floor"].append(c_api_times(binary, floor, "serving_default", ids, 1, per_round))
        for batch, key, count in ((1, "numpy1", per_round), (256, "numpy256", max(per_round // 10, 10))):
            times = []
            for _ in range(count):
                rows = rng.integers(0, len(users), batch)
                start = time.perf_counter()
                numpy_top10(query_table[rows + 1], candidates)
                times.append((time.perf_counter() - start) * 1000.0)
            samples[key].append(np.asarray(times))
        times = []
        for _ in range(per_round):
            rows = rng.integers(0, len(users), 1)
            start = time.perf_counter()
            served.run("recommend", user_id=users[rows], k=10)
            times.append((time.perf_counter() - start) * 1000.0)
        samples["python1"].append(np.asarray(times[5:]))
    return {key: np.concatenate(value) for key, value in samples.items() if value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-calls", metavar="EXPORT", help=argparse.SUPPRESS)  # the fresh-process part
    args = parser.parse_args()
    if args.first_calls:
        print(json.dumps(first_calls(Path(args.first_calls))))
        return
    rng = np.random.default_rng(args.seed)
    rows, first_rows, payload = [], [], {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        binary = build_client(scratch)
        floor = floor_export(scratch)
        for label, num_users, num_items in (
            ("3,706 items", 6040, 3706),
            ("1,000,000 items", 1000, 1_000_000),
        ):
            users = np.asarray([f"u{i}" for i in range(num_users)], dtype=object)
            items = [f"i{j}" for j in range(num_items)]
            ids = scratch / "ids.txt"
            ids.write_text("\n".join(users) + "\n")
            data = tfrec.data.ModelData(users=list(users), items=items, item_counts=[1] * num_items)
            model = tfrec.models.ImplicitMF(tfrec.models.ImplicitMFConfig(embedding_dim=64), data)
            start = time.perf_counter()
            path = tfrec.export(model, scratch / f"m{num_items}", validate=num_items < 100_000)
            export_s = time.perf_counter() - start
            served = tfrec.serving.ExportedModel(path)
            query_table = model.query_from_index(tf.range(num_users + 1, dtype=tf.int64)).numpy()
            candidates = model.catalogue_embeddings().numpy()
            for _ in range(20):  # warm up the NumPy and Python paths
                served.run("recommend", user_id=users[:1], k=10)
                numpy_top10(query_table[1:2], candidates)
            times = measured(binary, path, ids, floor, served, users, query_table, candidates, args.repeats, rng)
            served.close()
            done = subprocess.run([sys.executable, __file__, "--first-calls", str(path)], capture_output=True,
                                  text=True, check=True)  # fmt: skip
            first = json.loads(done.stdout.strip().splitlines()[-1])
            result = {
                "numpy_p50_ms": float(np.percentile(times["numpy1"], 50)),
                "numpy_batch256_p50_ms": float(np.percentile(times["numpy256"], 50)),
                "python_p50_ms": float(np.percentile(times["python1"], 50)),
                "export_s": export_s,
                "first_calls": first,
                "worst_first_over_median": max(v["first_ms"] / v["median_ms"] for v in first.values()),
            }
            if "c1" in times:
                result.update({
                    "p50_ms": float(np.percentile(times["c1"], 50)),
                    "p99_ms": float(np.percentile(times["c1"], 99)),
                    "batch256_p50_ms": float(np.percentile(times["c256"], 50)),
                    "batch256_p99_ms": float(np.percentile(times["c256"], 99)),
                    "floor_p50_ms": float(np.percentile(times["floor"], 50)),
                })  # fmt: skip
                result["p50_over_floor"] = result["p50_ms"] / result["floor_p50_ms"]
                result["p50_over_numpy"] = result["p50_ms"] / result["numpy_p50_ms"]
                result["numpy_over_batch256"] = result["numpy_batch256_p50_ms"] / result["batch256_p50_ms"]
            payload[label] = result
            shown = [result.get(key, float("nan")) for key in (
                "p50_ms", "p99_ms", "floor_p50_ms", "p50_over_floor", "numpy_p50_ms", "p50_over_numpy",
                "batch256_p50_ms", "batch256_p99_ms", "numpy_batch256_p50_ms", "numpy_over_batch256")]  # fmt: skip
            rows.append([label, *shown, result["python_p50_ms"], result["worst_first_over_median"], export_s])
            for shape, value in first.items():
                first_rows.append([label, shape, value["first_ms"], value["median_ms"],
                                   value["first_ms"] / value["median_ms"]])  # fmt: skip
            print(label, {k: v for k, v in result.items() if k != "first_calls"}, flush=True)
    info = machine()
    c_note = "" if binary is not None else "**No C compiler on this machine: the C-API columns were not measured.**\n\n"
    markdown = (
        "# Serving latency: `recommend` as TF Serving runs it (C API)\n\n"
        f"Generated by `python bench/serving_speed.py --repeats {args.repeats}` on {info['cpu']} "
        f"({info['cores']} cores, {info['memory']}), commit {info['commit']}, {info['date']}.\n"
        "64-d implicit_mf, default export (no XLA), k = 10. C API: `bench/serving_client.c` "
        "(`TF_LoadSessionFromSavedModel` + `TF_SessionRun`, XLA disabled as the server's `main()` does); "
        "floor: the same client on an identity signature; NumPy brute force at the default BLAS threads; "
        "Python: `tfrec.serving.ExportedModel`.\n\n" + c_note
        + table(
            ["catalogue", "C 1 user p50 ms", "C 1 user p99 ms", "floor p50 ms", "p50 / floor", "numpy 1 user p50 ms",
             "p50 / numpy", "C 256 users p50 ms", "C 256 users p99 ms", "numpy 256 p50 ms", "numpy / C at 256",
             "Python 1 user p50 ms", "worst first call / median", "export s"],
            rows,
        )  # fmt: skip
        + "\nTargets: 3.7K items, batch-1 p50 <= 1.5x the session floor and batch 256 >= 3x faster than "
        "NumPy; 1M items, batch-1 p50 <= 1.2x NumPy and batch 256 >= 3x faster than NumPy; no request shape "
        "after load (warmup replayed) > 3x its steady latency.\n\n"
        "## First call after load, per request shape (fresh process, XLA disabled, warmup replayed)\n\n"
        + table(["catalogue", "request", "first ms", "median ms", "first / median"], first_rows)
    )
    write("serving_speed", {"machine": info, "repeats": args.repeats, "c_api": binary is not None,
                            "results": payload}, markdown)  # fmt: skip


if __name__ == "__main__":
    main()
