"""Defaults checked on validation parts across datasets: does a neighbour do better?

For each model, its registered default and neighbours that change one field at a time are
trained on the training part of each dataset's split and scored on a validation part held
out of that training part (the test parts are never read). Each neighbour is compared with
the default on every dataset by `tfrec.evaluation.compare`: a 95% paired bootstrap interval
over users (ranking) or ratings (RMSE), and a verdict. A neighbour beats the default when
it is better beyond noise on at least one dataset and worse beyond noise on none; the
default holds when no neighbour beats it. Among neighbours that beat it, the one kept has
the best worst standing (its figure relative to the best setting on each dataset).

- rating models (RMSE): ML-100K fold u1 and ml-latest-small `random:0.2`, validation a
  random 10% of the training part.
- retrieval models (Recall@10, full ranking): ML-100K, ml-latest-small and CiteULike-t
  `leave-last-out`, validation the leave-last-out of the training part; the NCF models
  (gmf, mlp, neumf) on the two MovieLens sets.
- text models for item cold start (Recall@20, cold-start protocol): CiteULike-t and
  ml-latest-small `cold-items:0.2`, validation 20% of the training items held out.

Usage: python bench/defaults.py [--models biased_mf,implicit_mf,...] [--seed 0] [--update]
(--update: rerun only --models and keep the other models' last entries, each with its commit)
Writes bench/results/defaults.{md,json}.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

from common import COMMIT, RESULTS, SHARED_DATA, machine, table, write

import tfrec
from tfrec.data import split
from tfrec.training import train

DATASETS = {"ml-100k": ("movielens-100k", "ml-100k"), "ml-latest-small": ("movielens-latest-small", "ml-latest-small"),
            "citeulike-t": ("citeulike-t", "citeulike-t")}  # fmt: skip
# family: (metric, compare() protocol, {dataset: (split spec, validation spec)})
FAMILIES = {
    "rating": ("rmse", None, {"ml-100k": ("fold:u1", "random:0.1"), "ml-latest-small": ("random:0.2", "random:0.1")}),
    "ranking": ("recall@10", "full", {d: ("leave-last-out", "leave-last-out") for d in DATASETS}),
    # the NCF models score every (user, item) pair through their network: the MovieLens sets
    "ncf": ("recall@10", "full", {d: ("leave-last-out", "leave-last-out") for d in ("ml-100k", "ml-latest-small")}),
    "cold": ("recall@20", "cold-start", {"citeulike-t": ("cold-items:0.2", "cold-items:0.2"),
                                         "ml-latest-small": ("cold-items:0.2", "cold-items:0.2")}),
}  # fmt: skip
# model: (family, settings): one field changed at a time from the default ({} is the
# default itself; both sides of it where a run is cheap, the previous default among them).
NEIGHBOURS = {
    "biased_mf": ("rating", [{}, {"embedding_dim": 32}, {"embedding_dim": 128}, {"l2_factors": 0.05},
                             {"l2_factors": 0.2}, {"learning_rate": 2e-3, "epochs": 20}, {"epochs": 15}]),
    "implicit_mf": ("ranking", [{}, {"embedding_dim": 64}, {"temperature": 0.5}, {"l2": 1e-4},
                                {"learning_rate": 1e-2}, {"epochs": 10}, {"epochs": 40}, {"batch_size": 512}]),
    "two_tower": ("ranking", [{}, {"embedding_dim": 64}, {"temperature": 0.5}, {"learning_rate": 1e-2},
                              {"epochs": 5}, {"epochs": 20}, {"batch_size": 256}, {"batch_size": 1024}]),
    "ials": ("ranking", [{}, {"embedding_dim": 64}, {"embedding_dim": 256}, {"regularization": 0.1},
                         {"unobserved_weight": 0.3}, {"epochs": 5}, {"epochs": 20}]),
    "deep_mf": ("rating", [{}, {"embedding_dim": 32}, {"l2": 0.02}, {"l2": 0.1}, {"epochs": 3}, {"epochs": 10}]),
    "content_rating": ("rating", [{}, {"embedding_dim": 32}, {"embedding_dim": 128}, {"l2": 0.02}, {"epochs": 5},
                                  {"epochs": 20}]),
    "bayesian_mf": ("rating", [{}, {"embedding_dim": 50}, {"link_precision": 20.0},
                               {"epochs": 200, "burn_in": 20}]),
    "content_tower": ("cold", [{}, {"embedding_dim": 64}, {"embedding_dim": 256}, {"temperature": 0.5},
                               {"learning_rate": 2e-3}, {"epochs": 3}, {"epochs": 10}]),
    "hybrid": ("cold", [{}, {"temperature": 0.1}, {"temperature": 0.5}, {"id_dropout": 0.5}, {"epochs": 3},
                        {"epochs": 10}]),
    "gmf": ("ncf", [{}, {"factors": 64}, {"learning_rate": 3e-3}, {"epochs": 10}]),
    "mlp": ("ncf", [{}, {"mlp_layers": (64, 32, 16)}, {"mlp_layers": (256, 128, 64)}, {"learning_rate": 3e-3},
                    {"epochs": 10}]),
    "neumf": ("ncf", [{}, {"factors": 64}, {"learning_rate": 3e-3}, {"epochs": 10}, {"pretrain": True}]),
}  # fmt: skip


@functools.cache
def load(label: str):
    """A dataset, read once for all the models."""
    name, folder = DATASETS[label]
    return tfrec.datasets.load(name, SHARED_DATA / folder)


@functools.cache
def parts(family: str, label: str, seed: int):
    """The split whose training part trains and whose validation part scores."""
    spec, validation = FAMILIES[family][2][label]
    return split(load(label), spec, seed=seed, validation=validation)


def standing(value: float, best: float, metric: str) -> float:
    """A figure relative to the best on its dataset (1 = the best; lower RMSE is better)."""
    return best / value if metric == "rmse" else value / max(best, 1e-12)


def describe(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "default"


def check(model: str, seed: int) -> dict:
    """One model's default against its neighbours on every dataset of its family."""
    family, settings = NEIGHBOURS[model]
    metric, protocol, datasets = FAMILIES[family]
    figures: dict[str, dict[str, float]] = {}
    verdicts: dict[str, dict[str, dict]] = {}
    seconds: dict[str, float] = {}
    for label in datasets:
        split_parts = parts(family, label, seed)
        default = None
        for setting in settings:
            start = time.perf_counter()
            fitted = train(model, split_parts.train, seed=seed, verbose=0, **setting).model
            name = describe(setting)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            if default is None:
                default = fitted
                options = {} if protocol is None else {"k": [int(metric.split("@")[1])], "protocol": protocol}
                value = tfrec.evaluate(fitted, split_parts.train, split_parts.validation, **options)[metric]
            else:
                extra = {} if protocol is None else {"protocol": protocol}
                result = tfrec.evaluation.compare(fitted, default, split_parts.train, split_parts.validation,
                                                  metric=metric, seed=seed, **extra)  # fmt: skip
                value = result["a"]
                verdicts.setdefault(name, {})[label] = {k: result[k] for k in ("difference", "low", "high", "verdict")}
            figures.setdefault(name, {})[label] = value
            print(model, label, name, metric, round(value, 4), verdicts.get(name, {}).get(label, {}).get("verdict", ""),
                  f"{time.perf_counter() - start:.0f}s", flush=True)  # fmt: skip
    best = {d: (min if metric == "rmse" else max)(f[d] for f in figures.values()) for d in datasets}
    worst = {s: min(standing(f[d], best[d], metric) for d in datasets) for s, f in figures.items()}
    beats = [s for s, v in verdicts.items()
             if any(r["verdict"] == "better" for r in v.values()) and all(r["verdict"] != "worse" for r in v.values())]  # fmt: skip
    kept = max(beats, key=lambda s: worst[s]) if beats else "default"
    return {"metric": metric, "datasets": list(datasets), "validation": figures, "against_default": verdicts,
            "worst_standing": worst, "beat_default": beats, "kept": kept, "train_seconds": seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(NEIGHBOURS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update", action="store_true",
                        help="keep the other models' entries of the last results (each names its commit)")
    args = parser.parse_args()
    results, rows, verdicts = {}, [], []
    if args.update and (RESULTS / "defaults.json").exists():
        last = json.loads((RESULTS / "defaults.json").read_text())
        if last.get("seed") == args.seed:
            for model, checked in last["results"].items():
                results[model] = {"commit": last["machine"]["commit"], "date": last["machine"]["date"], **checked}
    for model in args.models.split(","):
        results[model] = {"commit": COMMIT, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **check(model, args.seed)}
    results = {m: results[m] for m in NEIGHBOURS if m in results}
    for model, checked in results.items():
        for setting, f in checked["validation"].items():
            against = checked["against_default"].get(setting, {})
            rows.append([model, setting, *(f"{f[d]:.4f}" + (f" ({against[d]['verdict']})" if d in against else "")
                                           for d in checked["datasets"]),
                         *[""] * (3 - len(checked["datasets"])), checked["worst_standing"][setting],
                         f"{checked['train_seconds'][setting]:.0f}", "kept" if setting == checked["kept"] else ""])  # fmt: skip
        verdicts.append([model, checked["metric"], ", ".join(checked["datasets"]), len(checked["validation"]) - 1,
                         ", ".join(checked["beat_default"]) or "none", checked["kept"], checked["commit"]])  # fmt: skip
    info = machine()
    markdown = (
        "# Defaults checked on validation parts across datasets\n\n"
        f"Generated by `python bench/defaults.py --models {args.models} --seed {args.seed}"
        f"{' --update' if args.update else ''}` on {info['cpu']} "
        f"({info['cores']} cores), commit {info['commit']}, {info['date']}.\n"
        "Each setting trained on each split's training part and scored on a validation part held out of it "
        "(test parts never read). In brackets: the neighbour against the default on that dataset, 95% paired "
        "bootstrap interval over users (ranking) or ratings (RMSE): better, worse or tie. A neighbour beats "
        "the default when it is better on a dataset and worse on none; standing = figure relative to the "
        "best setting on that dataset. Seconds: training, summed over the datasets.\n\n"
        + table(["model", "setting", "dataset 1", "dataset 2", "dataset 3", "worst standing", "train s", ""], rows)
        + "\nDatasets in the order of the second table.\n\n"
        + table(["model", "metric", "datasets", "neighbours", "beat the default", "kept", "commit"], verdicts)
    )
    write("defaults", {"machine": info, "seed": args.seed, "results": results}, markdown)


if __name__ == "__main__":
    main()
