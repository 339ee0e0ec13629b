"""Streaming from sharded Parquet files vs the in-memory path: peak memory and throughput.

For each size (synthetic interactions: Zipf-like item popularity, uniform users, over the
ids a log of ``--id-space`` interactions has, so every size trains the same tables), the
benchmark writes the log as 10 Parquet shards (not committed), then runs each model in a
fresh process: (a) streaming: `scan` + one epoch of `train_streaming(model)` (hash test
split 0.1); (b) in memory (sizes up to ``--in-memory-up-to``; 10^8 rows would not fit): the
shards read into pandas, `Interactions`, one epoch of `train(model)` on the same training
rows. It records the process's peak resident memory (ru_maxrss) and the epoch's examples
per second (graph tracing included).

Usage: python bench/streaming.py [--sizes 1000000,10000000,100000000] [--models implicit_mf,two_tower]
Writes bench/results/streaming.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from common import machine, table, write

RUN = r"""
import json, resource, sys, time
import pandas as pd
import tfrec
from tfrec.data import streaming
from tfrec.training import train, train_streaming
mode, pattern, name = sys.argv[1], sys.argv[2], sys.argv[3]
shards = streaming.Shards.of(pattern, "user=uid,item=song")
start = time.perf_counter()
if mode == "streaming":
    summary = streaming.scan(shards, test_fraction=0.1)
    scanned = time.perf_counter() - start
    result = train_streaming(name, shards, summary=summary, epochs=1, batch_size=1024, verbose=0)
    rows = summary.train_rows
else:
    frame = pd.concat([pd.read_parquet(f) for f in shards.files], ignore_index=True)
    frame = frame.rename(columns={"uid": "user_id", "song": "item_id"}).astype(str)
    test = streaming._test_mask(frame, 0.1)
    data = tfrec.data.Interactions(frame[~test].drop_duplicates(["user_id", "item_id"]), name="log")
    scanned = time.perf_counter() - start
    result = train(name, data, epochs=1, batch_size=1024, verbose=0)
    rows = len(data)
print("RESULT" + json.dumps({
    "rows": rows, "prepare_seconds": scanned, "train_seconds": result.train_seconds,
    "examples_per_second": rows / result.train_seconds,
    "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
}))
"""


def write_log(size: int, folder: Path, id_space: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    users, items = max(1000, id_space // 50), max(500, id_space // 200)
    for part in range(10):
        n = size // 10
        item = np.minimum(rng.zipf(1.3, n), items) - 1
        frame = pd.DataFrame({"uid": rng.integers(0, users, n), "song": rng.permutation(items)[item]})
        frame.to_parquet(folder / f"part-{part}.parquet", index=False)
    return str(folder / "part-*.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000,100000000")
    parser.add_argument("--models", default="implicit_mf,two_tower")
    parser.add_argument("--id-space", type=int, default=10_000_000)
    parser.add_argument("--in-memory-up-to", type=int, default=10_000_000)
    args = parser.parse_args()
    sizes, models = [int(s) for s in args.sizes.split(",")], args.models.split(",")
    results, rows = {}, []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            pattern = write_log(size, Path(folder), args.id_space)
            for name in models:
                for mode in ("streaming", "in-memory"):
                    if mode == "in-memory" and size > args.in_memory_up_to:
                        continue
                    done = subprocess.run([sys.executable, "-c", RUN, mode, pattern, name], capture_output=True,
                                          text=True, timeout=7200)  # fmt: skip
                    if done.returncode:
                        raise SystemExit(done.stderr[-3000:])
                    result = json.loads(done.stdout.split("RESULT", 1)[1])
                    results[f"{name}/{mode}/{size}"] = result
                    rows.append([name, f"{size:,}", mode, f"{result['rows']:,}", f"{result['prepare_seconds']:.1f}",
                                 f"{result['train_seconds']:.1f}", f"{result['examples_per_second']:,.0f}",
                                 f"{result['peak_gib']:.2f}"])  # fmt: skip
                    print(name, size, mode, result, flush=True)
    verdicts = []
    largest_in_memory = max(s for s in sizes if s <= args.in_memory_up_to)
    smallest_in_memory = min(sizes)
    for name in models:
        figure = {key.split("/", 1)[1]: r for key, r in results.items() if key.startswith(name + "/")}
        for small, large in zip(sizes, sizes[1:]):
            growth = figure[f"streaming/{large}"]["peak_gib"] / figure[f"streaming/{small}"]["peak_gib"]
            verdicts.append([f"{name}: streaming peak memory at {large:,} within 1.3x of {small:,}",
                             f"{growth:.2f}x", "met" if growth <= 1.3 else "MISSED"])  # fmt: skip
        if largest_in_memory > smallest_in_memory:
            growth = (figure[f"in-memory/{largest_in_memory}"]["peak_gib"]
                      / figure[f"in-memory/{smallest_in_memory}"]["peak_gib"])  # fmt: skip
            verdicts.append([f"{name}: in-memory peak memory grows with the data ({smallest_in_memory:,} -> "
                             f"{largest_in_memory:,})", f"{growth:.2f}x", "-"])  # fmt: skip
        speed = (figure[f"streaming/{largest_in_memory}"]["examples_per_second"]
                 / figure[f"in-memory/{largest_in_memory}"]["examples_per_second"])  # fmt: skip
        verdicts.append([f"{name}: streaming throughput >= 0.8x in-memory at {largest_in_memory:,}",
                         f"{speed:.2f}x", "met" if speed >= 0.8 else "MISSED"])  # fmt: skip
        last = sizes[-1]
        verdicts.append([f"{name}: one streamed epoch of {last:,} interactions completes (prepare + epoch)",
                         f"{figure[f'streaming/{last}']['prepare_seconds'] + figure[f'streaming/{last}']['train_seconds']:.0f} s",
                         "met"])  # fmt: skip
    info = machine()
    markdown = (
        "# Streaming from sharded Parquet vs in memory\n\n"
        f"Generated by `python bench/streaming.py --sizes {args.sizes} --models {args.models} --id-space "
        f"{args.id_space} --in-memory-up-to {args.in_memory_up_to}` on {info['cpu']} ({info['cores']} cores), "
        f"{info['memory']}, commit {info['commit']}, {info['date']}. One epoch, batch 1024, hash test split 0.1; "
        f"ids as in a log of {args.id_space:,} interactions at every size (the same tables); each run in a fresh "
        "process; prepare = the scan (streaming) or reading the shards into memory (in memory: only up to "
        f"{args.in_memory_up_to:,} interactions).\n\n"
        + table(["model", "interactions", "path", "training rows", "prepare s", "epoch s", "examples/s",
                 "peak GiB"], rows)  # fmt: skip
        + "\n\n"
        + table(["target", "figure", "verdict"], verdicts)
    )
    write("streaming", {"machine": info, "results": results, "verdicts": verdicts}, markdown)


if __name__ == "__main__":
    main()
