"""tfrec's `ials` against `implicit`'s ALS: same split, same tuning budget, chosen on validation.

Protocol (per dataset): the test split is leave-last-out of the whole data; a validation
split is leave-last-out of the training part. Each model gets the same budget: a 3 x 3
grid at 64 factors and 15 sweeps, every point fitted on the validation-training part and
scored by validation Recall@10 (seed 0). The best point is refitted on the whole training
part with each seed and scored once on the test split. Recall@10 under leave-last-out is a
per-user hit (one test item each), so its standard error is sqrt(p(1-p)/users). The two
models' first-seed refits are compared by `tfrec.evaluation.compare`: the difference in
Recall@10 with a 95% paired bootstrap interval over test users, and a verdict (better /
worse / tie, from ials's side).

Speed: wall seconds of one fit (graph tracing included) at the chosen settings, and on
synthetic data of 10^6 interactions (and 10^7 with --large) the seconds per sweep of each
library at 64 factors.

Run: python bench/ials_quality.py [--datasets ml-100k,ml-latest-small] [--seeds 0,1,2] [--large]
Needs `implicit` (make bench installs it) and ../shared/data.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time

# implicit's own advice for its CPU ALS (it warns otherwise): BLAS single-threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from common import SHARED_DATA, machine, peak_gib, reset_peak, table, write
from peers import implicit_model

import tfrec
from tfrec.training import train

DATASETS = {"ml-100k": "movielens-100k", "ml-latest-small": "movielens-latest-small"}
FACTORS, SWEEPS = 64, 15
GRIDS = {
    "tfrec ials": [
        {"regularization": r, "unobserved_weight": w}
        for r, w in itertools.product((0.003, 0.01, 0.03), (0.03, 0.1, 0.3))
    ],
    "implicit ALS": [
        {"regularization": r, "alpha": a} for r, a in itertools.product((0.01, 0.1, 1.0), (1.0, 10.0, 40.0))
    ],
}


def fit(name: str, data, params: dict, seed: int):
    """(model, wall seconds) of one fit."""
    start = time.perf_counter()
    if name == "tfrec ials":
        model = train(
            "ials", data, seed=seed, verbose=0, embedding_dim=FACTORS, epochs=SWEEPS, **params
        ).model
    else:
        model = implicit_model("als", data, seed, factors=FACTORS, iterations=SWEEPS, **params)
    return model, time.perf_counter() - start


def recall_ndcg(model, train_part, test_part) -> tuple[float, float, int]:
    metrics = tfrec.evaluate(model, train_part, test_part, k=10)
    return metrics["recall@10"], metrics["ndcg@10"], int(metrics["users"])


def quality(dataset: str, seeds: list[int]) -> tuple[list[list], dict]:
    data = tfrec.datasets.load(DATASETS[dataset], SHARED_DATA / dataset)
    parts = tfrec.data.split(data, "leave-last-out")
    validation = tfrec.data.split(parts.train, "leave-last-out")
    rows, payload, first = [], {}, {}
    for name, grid in GRIDS.items():
        scored = []
        for params in grid:
            model, _ = fit(name, validation.train, params, seed=0)
            scored.append((recall_ndcg(model, validation.train, validation.test)[0], params))
        best_val, best = max(scored, key=lambda s: s[0])
        runs = []
        for seed in seeds:
            model, seconds = fit(name, parts.train, best, seed)
            first.setdefault(name, model)
            recall, ndcg, users = recall_ndcg(model, parts.train, parts.test)
            runs.append((recall, ndcg, seconds))
        recall, ndcg, seconds = (float(x) for x in np.mean(runs, axis=0))
        se = math.sqrt(recall * (1 - recall) / users)
        payload[name] = {
            "best": best, "validation_recall@10": best_val, "grid": [[s, p] for s, p in scored],
            "test_recall@10": recall, "test_ndcg@10": ndcg, "se_recall@10": se, "train_seconds": seconds,
            "per_seed_recall@10": [r[0] for r in runs], "users": users,
        }  # fmt: skip
        rows.append([dataset, name, str(best), best_val, recall, se, ndcg, round(seconds, 2),
                     ", ".join(f"{r[0]:.4f}" for r in runs)])  # fmt: skip
    paired = tfrec.evaluation.compare(first["tfrec ials"], first["implicit ALS"], parts.train, parts.test,
                                      metric="recall@10", seed=seeds[0])  # fmt: skip
    payload.update(difference=paired["difference"], low=paired["low"], high=paired["high"], verdict=paired["verdict"],
                   paired_seed=seeds[0])  # fmt: skip
    return rows, payload


def speed(size: int) -> tuple[list, dict]:
    data = tfrec.datasets.synthetic(num_users=max(2000, size // 100), num_items=max(1000, size // 200),
                                    num_interactions=size, seed=0)  # fmt: skip
    out = {}
    for name, params, sweeps in (
        ("tfrec ials", {"regularization": 0.01, "unobserved_weight": 0.1}, (3, 15)),
        ("implicit ALS", {"regularization": 0.1, "alpha": 10.0}, (3, 15)),
    ):
        times = []
        for n in sweeps:  # the per-sweep time is the slope, so fixed costs (tracing) drop out
            reset_peak()
            start = time.perf_counter()
            if name == "tfrec ials":
                train("ials", data, verbose=0, embedding_dim=FACTORS, epochs=n, **params)
            else:
                implicit_model("als", data, 0, factors=FACTORS, iterations=n, **params)
            times.append(time.perf_counter() - start)
        per_sweep = (times[1] - times[0]) / (sweeps[1] - sweeps[0])
        out[name] = {"seconds_3_sweeps": times[0], "seconds_15_sweeps": times[1], "seconds_per_sweep": per_sweep,
                     "fixed_seconds": times[0] - 3 * per_sweep, "peak_gib": peak_gib()}  # fmt: skip
    row = [f"{size:,}"]
    for name in ("tfrec ials", "implicit ALS"):
        row += [round(out[name]["seconds_per_sweep"], 3), round(out[name]["fixed_seconds"], 2)]
    row.append(round(out["tfrec ials"]["seconds_per_sweep"] / out["implicit ALS"]["seconds_per_sweep"], 2))
    row.append(round(out["tfrec ials"]["seconds_15_sweeps"] / out["implicit ALS"]["seconds_15_sweeps"], 2))
    return row, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--large", action="store_true", help="also time 10^7 interactions")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, payload = [], {"factors": FACTORS, "sweeps": SWEEPS, "seeds": seeds, "grids": dict(GRIDS)}
    for dataset in args.datasets.split(","):
        dataset_rows, payload[dataset] = quality(dataset, seeds)
        rows += dataset_rows
    speed_rows = []
    for size in (10**6, 10**7) if args.large else (10**6,):
        row, payload[f"speed_{size}"] = speed(size)
        speed_rows.append(row)
    payload["machine"] = machine()  # after the runs: it records their time
    verdicts = "\n".join(
        f"- {d}: tfrec - implicit Recall@10 (seed {payload[d]['paired_seed']} refits) = "
        f"{payload[d]['difference']:+.4f} [{payload[d]['low']:+.4f}, {payload[d]['high']:+.4f}] (95% paired "
        f"bootstrap over users): **{payload[d]['verdict']}**"
        for d in args.datasets.split(",")
    )
    markdown = (
        "# iALS: tfrec `ials` vs `implicit` ALS\n\n"
        f"Commit {payload['machine']['commit']}, {payload['machine']['cpu']}, {payload['machine']['cores']} cores. "
        f"{FACTORS} factors, {SWEEPS} sweeps; each library tuned on a 3x3 grid on a validation split "
        f"(leave-last-out of the training part), the best point refitted and scored once on the test split "
        f"(leave-last-out), seeds {seeds}.\n\n"
        + table(
            [
                "dataset",
                "model",
                "chosen on validation",
                "val R@10",
                "test R@10",
                "s.e.",
                "test NDCG@10",
                "train s (wall, incl. tracing)",
                "R@10 per seed",
            ],
            rows,
        )  # fmt: skip
        + "\n"
        + verdicts
        + "\n\n## Seconds per sweep (synthetic, 64 factors; slope between 3 and 15 sweeps; fixed = the rest: data preparation, graph tracing)\n\n"
        + table(
            [
                "interactions",
                "tfrec s/sweep",
                "tfrec fixed s",
                "implicit s/sweep",
                "implicit fixed s",
                "tfrec / implicit per sweep",
                "tfrec / implicit, 15 sweeps wall",
            ],
            speed_rows,
        )  # fmt: skip
    )
    write("ials_quality", payload, markdown)


if __name__ == "__main__":
    main()
