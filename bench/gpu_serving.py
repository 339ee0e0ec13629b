"""Exports served on a GPU: every signature and the XLA core run there, latency next to CPU.

Exports two models with the XLA core (`xla=True`; implicit_mf: id embeddings; deep_mf with implicit feedback: MLP
towers; 64-d, weights as initialised: latency does not depend on them) over a 3,706-item
and a 1,000,000-item catalogue, loads each export with TensorFlow alone on the device
(`tf.saved_model.load` under `tf.device`), runs every signature once and the aliased XLA
core (`recommend_top`) directly, checks the device's answers equal the CPU's, and times
`recommend` (k = 10) at batch 1 and 256 on the device and on the CPU: p50 and p99.

Without a GPU visible to TensorFlow it says so, writes that to its results and exits 0;
`--device cpu` runs every step on the CPU alone (a check of the script itself; it prints
the table and leaves bench/results as they are).

Usage: python bench/gpu_serving.py [--device gpu|cpu] [--repeats 200]
Writes bench/results/gpu_serving.{md,json}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, table, write

import tfrec
from tfrec._keras import tf

SIZES = (("3,706 items", 6040, 3706), ("1,000,000 items", 1000, 1_000_000))


def build(name: str, num_users: int, num_items: int):
    data = tfrec.data.ModelData(
        users=[f"u{i}" for i in range(num_users)], items=[f"i{j}" for j in range(num_items)],
        item_counts=[1] * num_items,
    )  # fmt: skip
    if name == "implicit_mf":
        return tfrec.models.ImplicitMF(tfrec.models.ImplicitMFConfig(embedding_dim=64), data)
    config = tfrec.models.DeepMFConfig(feedback="implicit", embedding_dim=64, hidden_units=(128, 64))
    return tfrec.models.DeepMF(config, data)


def inputs(signature: str, users: np.ndarray, items: np.ndarray) -> dict[str, tf.Tensor]:
    """One request per signature (3 rows, k = 10)."""
    u, i, k = tf.constant(users[:3]), tf.constant(items[:3]), tf.fill([3], 10)
    return {
        "serving_default": {"user_id": u},
        "recommend": {"user_id": u, "k": k},
        "recommend_including_seen": {"user_id": u, "k": k},
        "recommend_excluding": {"user_id": u, "k": k, "exclude_item_ids": tf.constant([[items[0], "", ""]] * 3)},
        "score": {"user_id": u, "item_id": i},
        "query_embedding": {"user_id": u},
        "item_embedding": {"item_id": i},
        "similar_items": {"item_id": i, "k": k},
    }[signature]


def every_signature(loaded, users, items) -> dict[str, dict[str, np.ndarray]]:
    outputs = {}
    for name, function in loaded.signatures.items():
        outputs[name] = {k: v.numpy() for k, v in function(**inputs(name, users, items)).items()}
    scores, positions = loaded.recommend_top(tf.range(1, 4, dtype=tf.int64), tf.zeros([3, 0], tf.int64))
    outputs["recommend_top"] = {"scores": scores.numpy(), "positions": positions.numpy()}
    return outputs


def timed(loaded, users: np.ndarray, batch: int, repeats: int, rng) -> np.ndarray:
    recommend = loaded.signatures["recommend"]
    times = []
    for _ in range(repeats + 5):
        chosen = tf.constant(users[rng.integers(0, len(users), batch)])
        start = time.perf_counter()
        recommend(user_id=chosen, k=tf.fill([batch], 10))["scores"].numpy()
        times.append(time.perf_counter() - start)
    return np.asarray(times[5:]) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    info = machine()
    gpus = tf.config.list_physical_devices("GPU")
    header = "# Exports served on a GPU\n\n"
    if args.device == "gpu" and not gpus:
        note = f"No GPU visible to TensorFlow on {info['cpu']}: nothing was run ({info['date']}).\n"
        print(note.strip())
        write("gpu_serving", {"machine": info, "ran": False, "reason": "no GPU"}, header + note)
        return
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    rng = np.random.default_rng(args.seed)
    rows, payload = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for model_name in ("implicit_mf", "deep_mf"):
            for label, num_users, num_items in SIZES:
                model = build(model_name, num_users, num_items)
                path = tfrec.export(model, Path(scratch) / f"{model_name}{num_items}", validate=num_items < 100_000,
                                     exclude_width=3, xla=True)
                users = np.asarray(list(model.user_vocabulary), dtype=object)
                items = np.asarray(list(model.item_vocabulary), dtype=object)
                result = {}
                answers = {}
                for where in dict.fromkeys((device, "/CPU:0")):
                    with tf.device(where):
                        loaded = tf.saved_model.load(str(path))
                        answers[where] = every_signature(loaded, users, items)
                        for batch in (1, 256):
                            ms = timed(loaded, users, batch, args.repeats if batch == 1 else max(args.repeats // 10, 10), rng)
                            result[f"{where}/batch{batch}"] = (float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))
                for signature, outputs in answers[device].items():
                    for key, value in outputs.items():
                        want = answers["/CPU:0"][signature][key]
                        if value.dtype.kind in "fc":
                            np.testing.assert_allclose(value, want, rtol=1e-3, atol=1e-4, err_msg=f"{signature}/{key}")
                payload[f"{model_name} {label}"] = result
                for batch in (1, 256):
                    on, cpu = result[f"{device}/batch{batch}"], result[f"/CPU:0/batch{batch}"]
                    rows.append([model_name, label, batch, on[0], on[1], cpu[0], cpu[1]])
                print(model_name, label, result, flush=True)
    markdown = (
        header
        + f"Generated by `python bench/gpu_serving.py --device {args.device} --repeats {args.repeats}` on "
        f"{info['cpu']} ({[g.name for g in gpus] or 'no GPU'}), commit {info['commit']}, {info['date']}.\n"
        "Every signature and the XLA core ran on the device and matched the CPU's answers.\n\n"
        + table(["model", "catalogue", "batch", f"{args.device} p50 ms", f"{args.device} p99 ms",
                 "CPU p50 ms", "CPU p99 ms"], rows)  # fmt: skip
    )
    if args.device == "cpu":  # a check of the script: its figures are not GPU results
        print(markdown + "\n(--device cpu: bench/results/gpu_serving.* left as they were)")
        return
    write("gpu_serving", {"machine": info, "ran": True, "device": args.device, "results": payload}, markdown)


if __name__ == "__main__":
    main()
