"""The approximate index at export against the exact export and faiss, on one catalogue.

A 64-d ``implicit_mf`` over ``--items`` generated items and 1,000 users whose embeddings
are set to clustered vectors (a mixture of 2,000 Gaussians: centres N(0, 1), spread
``--spread``; trained embeddings are clustered, and isotropic noise would leave an index
nothing to find: at spread 2 no method here gets 0.95 without scanning nearly everything). Both exports use
the default options and the same weights; the approximate one is built with
``index="approx", recall=0.95`` (its partitions and probes chosen at export, recorded in
the metadata). Every timing is ``recommend_including_seen`` (k = 10: no exclusions, so
faiss answers the same question):

- **C API** (the path TF Serving's C++ takes, XLA off as a stock server starts):
  ``bench/serving_client.c`` from bench/serving_speed.py, p50 at batch 1 and 256;
- **faiss** (``faiss-cpu``, inner product): IVF-Flat with the same number of partitions,
  its ``nprobe`` raised (powers of two) until it reaches the recall the tfrec index
  measures on the same users, and HNSW (M = 32, ``efSearch`` raised likewise); p50 of
  ``index.search`` at batch 1 and 256, the machine's default threads.

Recall@10 of each approximate answer is measured against the exact export's answer for
all 1,000 users.

Usage: python bench/approx_index.py [--items 1000000] [--repeats 200]
Writes bench/results/approx_index.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, table, write
from serving_speed import build_client, c_api_times

import tfrec
from tfrec.serving.index import recall_at

DIM = 64
USERS = 1000


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray, spread: float) -> np.ndarray:
    """``n`` vectors around randomly chosen ``centres`` (standard deviation ``spread``)."""
    return (centres[rng.integers(0, len(centres), n)] + spread * rng.normal(size=(n, DIM))).astype(np.float32)


def p50(times: list[float] | np.ndarray) -> float:
    return float(np.percentile(np.asarray(times), 50))


def faiss_search(index, queries: np.ndarray, repeats: int, rng) -> tuple[np.ndarray, float, float]:
    """Top-10 of every query (item index, 1-based), p50 ms at batch 1 and 256."""
    top = index.search(queries, 10)[1] + 1
    one, many = [], []
    for _ in range(repeats):
        row = rng.integers(0, len(queries))
        start = time.perf_counter()
        index.search(queries[row : row + 1], 10)
        one.append((time.perf_counter() - start) * 1000)
    for _ in range(max(5, repeats // 20)):
        rows = rng.integers(0, len(queries), 256)
        start = time.perf_counter()
        index.search(queries[rows], 10)
        many.append((time.perf_counter() - start) * 1000)
    return top, p50(one), p50(many)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spread", type=float, default=0.5, help="within-cluster standard deviation (centres: 1)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    centres = rng.normal(size=(2000, DIM)).astype(np.float32)
    items = clustered(args.items, rng, centres, args.spread)
    queries = clustered(USERS, rng, centres, args.spread)
    users = [f"u{i}" for i in range(USERS)]
    data = tfrec.data.ModelData(users=users, items=[f"i{j}" for j in range(args.items)], item_counts=[1] * args.items)
    model = tfrec.models.ImplicitMF(tfrec.models.ImplicitMFConfig(embedding_dim=DIM), data)
    model.candidate_tower.table().assign(np.vstack([np.zeros((1, DIM), np.float32), items]))
    model.query_tower.table().assign(np.vstack([np.zeros((1, DIM), np.float32), queries]))
    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        binary = build_client(scratch)
        ids = scratch / "ids.txt"
        ids.write_text("\n".join(users) + "\n")
        answers = {}
        for kind in ("exact", "approx"):
            start = time.perf_counter()
            path = tfrec.export(model, scratch / kind, index=kind, recall=0.95, validate=args.items < 100_000)
            export_s = time.perf_counter() - start
            served = tfrec.serving.ExportedModel(path)
            answers[kind] = np.concatenate([
                served.run("recommend_including_seen", user_id=users[i : i + 100], k=[10] * 100)["item_ids"]
                for i in range(0, USERS, 100)
            ]).astype(str)  # fmt: skip
            served.close()
            index = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())["index"]
            result = {"export_s": export_s, "index": index}
            if binary is not None:
                result["p50_ms"] = p50(c_api_times(binary, path, "recommend_including_seen", ids, 1, args.repeats))
                result["batch256_p50_ms"] = p50(
                    c_api_times(binary, path, "recommend_including_seen", ids, 256, max(5, args.repeats // 20))
                )
            results[f"tfrec {kind}"] = result
            print(kind, result, flush=True)
        results["tfrec approx"]["recall@10"] = recall_at(answers["approx"], answers["exact"])
        exact_index = np.asarray([[int(i[1:]) + 1 for i in row] for row in answers["exact"]])
        target = results["tfrec approx"]["recall@10"]
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        partitions = results["tfrec approx"]["index"]["partitions"]
        start = time.perf_counter()
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, partitions, faiss.METRIC_INNER_PRODUCT)
        ivf.train(items)
        ivf.add(items)
        build_s = time.perf_counter() - start
        for probes in (2**i for i in range(12)):
            ivf.nprobe = probes
            top, one, many = faiss_search(ivf, queries, args.repeats, rng)
            recall = recall_at(top, exact_index)
            if recall >= target or probes >= partitions:
                break
        results["faiss IVF-Flat"] = {"build_s": build_s, "nprobe": probes, "recall@10": recall, "p50_ms": one,
                                     "batch256_p50_ms": many}  # fmt: skip
        print(results["faiss IVF-Flat"], flush=True)
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.add(items)
        build_s = time.perf_counter() - start
        for ef in (16, 32, 64, 128, 256, 512):
            hnsw.hnsw.efSearch = ef
            top, one, many = faiss_search(hnsw, queries, args.repeats, rng)
            recall = recall_at(top, exact_index)
            if recall >= target:
                break
        results["faiss HNSW"] = {"build_s": build_s, "efSearch": ef, "recall@10": recall, "p50_ms": one,
                                 "batch256_p50_ms": many}  # fmt: skip
        print(results["faiss HNSW"], flush=True)
    exact, approx = results["tfrec exact"], results["tfrec approx"]
    rows = []
    for name, r in results.items():
        built = r.get("build_s", r.get("index", {}).get("build_seconds"))
        rows.append([name, f"{r['recall@10']:.4f}" if "recall@10" in r else "1 (reference)",
                     f"{r['p50_ms']:.3f}" if "p50_ms" in r else "-",
                     f"{r['batch256_p50_ms']:.2f}" if "batch256_p50_ms" in r else "-",
                     "-" if built is None else f"{built:.1f}"])  # fmt: skip
    index = approx["index"]
    lines = []
    if "p50_ms" in exact:
        lines.append(f"tfrec approx vs exact, batch 1 p50: {exact['p50_ms'] / approx['p50_ms']:.1f}x faster "
                     "(target 10x)")  # fmt: skip
        lines.append(f"tfrec approx vs exact, batch 256 p50: "
                     f"{exact['batch256_p50_ms'] / approx['batch256_p50_ms']:.1f}x faster (target 5x)")  # fmt: skip
        if "faiss IVF-Flat" in results:
            lines.append(f"tfrec approx / faiss IVF-Flat, batch 1 p50: "
                         f"{approx['p50_ms'] / results['faiss IVF-Flat']['p50_ms']:.1f}x (target within 2x)")  # fmt: skip
    lines.append(f"index build (k-means, partitions, probes chosen): {index['build_seconds']:.1f} s (target < 60 s)")
    info = machine()
    markdown = (
        f"# Approximate index: {args.items:,} items, {DIM}-d\n\n"
        f"Generated by `python bench/approx_index.py --items {args.items} --repeats {args.repeats} --spread {args.spread}` on {info['cpu']} "
        f"({info['cores']} cores), commit {info['commit']}, {info['date']}.\n\n"
        f"tfrec index: {index['partitions']} partition rows of {index['partition_width']} items, {index['probes']} "
        f"probed ({index['items_scored_per_query']:,} items scored a query); recall@10 at export "
        f"{index['recall@10']} on {index['sample_users']} users. Timings: `recommend_including_seen`, k = 10; "
        "tfrec through the C API (stock-server path), faiss through its Python API. Recall@10 against the exact "
        "export over all 1,000 users.\n\n"
        + table(["index", "recall@10", "batch 1 p50 ms", "batch 256 p50 ms", "build s"], rows)
        + "\n" + "\n".join(f"- {line}" for line in lines) + "\n"
        + ("" if faiss is not None else "\n`faiss-cpu` is not installed (`make bench-peers`): faiss was not run.\n")
        + "\nScaNN: not run. `scann==1.4.2` installs from PyPI, but `import scann` loads its TensorFlow custom ops, "
        "which fail against TensorFlow 2.21 here (`_scann_ops.so: undefined symbol ...absl...raw_log_internal...`); "
        "a stock `tensorflow_model_server` has no ScaNN ops either.\n"
    )
    write("approx_index", {"machine": info, "items": args.items, "results": results}, markdown)


if __name__ == "__main__":
    main()
