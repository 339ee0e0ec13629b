"""Defaults checked on validation parts across datasets: does a neighbour do better?

For each model, its registered default and neighbours that change one field at a time are
trained on the training part of each dataset's split and scored on a validation part held
out of that training part (the test parts are never read). A setting's standing on a
dataset is its figure relative to the best setting there (Recall@10 / best, or best RMSE /
RMSE); the setting kept is the one whose worst standing across the datasets is highest
(one that does well everywhere rather than best on one), the default when it ties.

- biased_mf (RMSE): ML-100K fold u1 and ml-latest-small `random:0.2`, validation a random
  10% of the training part.
- implicit_mf, two_tower (Recall@10, full ranking): ML-100K, ml-latest-small and
  CiteULike-t `leave-last-out`, validation the leave-last-out of the training part.

Usage: python bench/defaults.py [--models biased_mf,implicit_mf,two_tower] [--seed 0]
Writes bench/results/defaults.{md,json}.
"""

from __future__ import annotations

import argparse
import functools
import time

from common import SHARED_DATA, machine, table, write

import tfrec
from tfrec.data import split
from tfrec.training import train

DATASETS = {"ml-100k": ("movielens-100k", "ml-100k"), "ml-latest-small": ("movielens-latest-small", "ml-latest-small"),
            "citeulike-t": ("citeulike-t", "citeulike-t")}  # fmt: skip
RATINGS = {"ml-100k": "fold:u1", "ml-latest-small": "random:0.2"}
# One field changed at a time from the default ({} is the default itself; epochs on both
# sides of it).
NEIGHBOURS = {
    "biased_mf": [{}, {"embedding_dim": 32}, {"embedding_dim": 128}, {"l2_factors": 0.05}, {"l2_factors": 0.2},
                  {"learning_rate": 2e-3, "epochs": 20}, {"epochs": 15}],
    "implicit_mf": [{}, {"embedding_dim": 64}, {"temperature": 0.5}, {"l2": 1e-4}, {"learning_rate": 1e-2},
                    {"epochs": 10}, {"epochs": 40}, {"batch_size": 512}],
    "two_tower": [{}, {"embedding_dim": 64}, {"temperature": 0.5}, {"learning_rate": 1e-2}, {"epochs": 5},
                  {"epochs": 20}, {"batch_size": 512}],
}  # fmt: skip


@functools.cache
def load(label: str):
    """A dataset, read once for all the models."""
    name, folder = DATASETS[label]
    return tfrec.datasets.load(name, SHARED_DATA / folder)


def validation_parts(model: str, seed: int) -> dict:
    """Per dataset, the split whose training part trains and whose validation part scores."""
    parts = {}
    for label in DATASETS:
        if model == "biased_mf" and label not in RATINGS:
            continue
        data = load(label)
        if model == "biased_mf":
            parts[label] = split(data, RATINGS[label], seed=seed, validation="random:0.1")
        else:
            parts[label] = split(data, "leave-last-out", seed=seed, validation="leave-last-out")
    return parts


def standing(value: float, best: float, metric: str) -> float:
    """A figure relative to the best on its dataset (1 = the best; lower RMSE is better)."""
    return best / value if metric == "rmse" else value / max(best, 1e-12)


def describe(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "default"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(NEIGHBOURS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results, rows, verdicts = {}, [], []
    for model in args.models.split(","):
        metric = "rmse" if model == "biased_mf" else "recall@10"
        figures: dict[str, dict[str, float]] = {}
        for label, parts in validation_parts(model, args.seed).items():
            for setting in NEIGHBOURS[model]:
                start = time.perf_counter()
                fitted = train(model, parts.train, seed=args.seed, verbose=0, **setting).model
                value = tfrec.evaluate(fitted, parts.train, parts.validation, k=[10])[metric]
                figures.setdefault(describe(setting), {})[label] = value
                print(model, label, describe(setting), metric, round(value, 4),
                      f"{time.perf_counter() - start:.0f}s", flush=True)  # fmt: skip
        datasets = list(next(iter(figures.values())))
        best = {d: (min if metric == "rmse" else max)(f[d] for f in figures.values()) for d in datasets}

        worst = {s: min(standing(f[d], best[d], metric) for d in datasets) for s, f in figures.items()}
        kept = max(worst, key=lambda s: (round(worst[s], 4), s == "default"))
        results[model] = {"metric": metric, "validation": figures, "worst_standing": worst, "kept": kept}
        for setting, f in figures.items():
            rows.append([model, setting, *(f"{f[d]:.4f}" for d in datasets), *[""] * (3 - len(datasets)),
                         worst[setting], "kept" if setting == kept else ""])  # fmt: skip
        verdicts.append([model, metric, kept, worst["default"], worst[kept]])
    info = machine()
    markdown = (
        "# Defaults checked on validation parts across datasets\n\n"
        f"Generated by `python bench/defaults.py --models {args.models} --seed {args.seed}` on {info['cpu']} "
        f"({info['cores']} cores), commit {info['commit']}, {info['date']}.\n"
        "Each setting trained on each split's training part and scored on a validation part held out of it "
        "(test parts never read). Standing = figure relative to the best setting on that dataset; the setting "
        "kept has the highest worst standing (the default on a tie).\n\n"
        + table(["model", "setting", "dataset 1", "dataset 2", "dataset 3", "worst standing", ""], rows)
        + "\nDatasets in order: biased_mf (validation RMSE): ml-100k, ml-latest-small; implicit_mf, two_tower "
        "(validation Recall@10): ml-100k, ml-latest-small, citeulike-t.\n\n"
        + table(["model", "metric", "kept", "default's worst standing", "kept's worst standing"], verdicts)
    )
    write("defaults", {"machine": info, "seed": args.seed, "results": results}, markdown)


if __name__ == "__main__":
    main()
