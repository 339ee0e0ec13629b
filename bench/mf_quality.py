"""Matrix-factorization quality on ML-100K, next to Surprise, in one script run.

- Ratings: the five predefined folds u1..u5 (mean over folds): biased_mf, bayesian_mf, deep_mf and
  Surprise's SVD, SVD++ and BaselineOnly with their defaults (`pip install scikit-surprise`;
  skipped with a note when it is absent).
- Implicit top-K: leave-last-out (each user's latest rating held out), full ranking over the
  training items with each user's training items excluded: implicit_mf (softmax + log-Q and
  BPR), deep_mf (implicit) and popularity; Recall@10 and NDCG@10.

Usage: python bench/mf_quality.py [--folds u1,u2,u3,u4,u5] [--seed 0]
Writes bench/results/mf_quality.{md,json}.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import SHARED_DATA, machine, pooled_rmse, table, write
from peers import implicit_peers, seed_mean

import tfrec
from tfrec.data import split
from tfrec.training import train


def surprise_models():
    try:
        import surprise
    except ImportError:
        return None, {}
    return surprise, {
        "surprise SVD": surprise.SVD,
        "surprise SVD++": surprise.SVDpp,
        "surprise BaselineOnly": surprise.BaselineOnly,
    }


def run_surprise(surprise, algo_cls, parts, seed):
    reader = surprise.Reader(rating_scale=(1, 5))
    frame = parts.train.frame[["user_id", "item_id", "rating"]]
    trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    algo = algo_cls(verbose=False) if algo_cls is surprise.BaselineOnly else algo_cls(random_state=seed)
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    test = parts.test.frame
    predicted = np.asarray([algo.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"])])
    return (
        tfrec.evaluation.rmse(test["rating"], predicted),
        tfrec.evaluation.mae(test["rating"], predicted),
        seconds,
    ), predicted - test["rating"].to_numpy(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--topk-seeds", type=int, default=3, help="seeds averaged in the top-K part")
    args = parser.parse_args()
    folds = args.folds.split(",")
    data = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    surprise, peers = surprise_models()

    ratings: dict[str, list[tuple[float, float, float]]] = {}
    errors: dict[str, list[np.ndarray]] = {}
    for fold in folds:
        parts = split(data, f"fold:{fold}")
        test = parts.test.frame
        for name in ("biased_mf", "bayesian_mf", "deep_mf"):
            result = train(name, parts.train, seed=args.seed, verbose=0)
            metrics = tfrec.evaluate(result.model, parts.train, parts.test)
            ratings.setdefault(name, []).append((metrics["rmse"], metrics["mae"], result.train_seconds))
            predicted = result.model.score(test["user_id"].to_numpy(), test["item_id"].to_numpy())
            errors.setdefault(name, []).append(predicted - test["rating"].to_numpy(np.float64))
            print(fold, name, metrics, f"{result.train_seconds:.1f}s", flush=True)
        for name, algo_cls in peers.items():
            row, error = run_surprise(surprise, algo_cls, parts, args.seed)
            ratings.setdefault(name, []).append(row)
            errors.setdefault(name, []).append(error)
            print(fold, name, ratings[name][-1], flush=True)
    pooled = {name: pooled_rmse(e, args.seed) for name, e in errors.items()}

    parts = split(data, "leave-last-out", seed=args.seed)
    topk: dict[str, tuple[float, float, float]] = {}
    candidates = {
        "implicit_mf (softmax, log-Q)": ("implicit_mf", {}),
        "implicit_mf (bpr)": ("implicit_mf", {"loss": "bpr"}),
        "deep_mf (implicit)": (
            "deep_mf",
            {"feedback": "implicit", "epochs": 20, "batch_size": 1024, "l2": 0.0},
        ),
    }
    seeds = [args.seed + s for s in range(args.topk_seeds)]
    for label, (name, overrides) in candidates.items():
        runs = []
        for seed in seeds:
            result = train(name, parts.train, seed=seed, verbose=0, **overrides)
            metrics = tfrec.evaluate(result.model, parts.train, parts.test, k=[10])
            runs.append((metrics["recall@10"], metrics["ndcg@10"], result.train_seconds))
            print(label, seed, metrics, flush=True)
        topk[label] = seed_mean(runs)
    popularity = tfrec.evaluate(tfrec.evaluation.Popularity(parts.train), parts.train, parts.test, k=[10])
    topk["popularity"] = (popularity["recall@10"], popularity["ndcg@10"], 0.0, "-")
    topk.update(implicit_peers(parts, split(data, "leave-last-out", seed=args.seed, validation="leave-last-out"), seeds))

    rating_rows = []
    for name, runs in ratings.items():
        array = np.asarray(runs)
        p = pooled[name]
        rating_rows.append([name, *[float(x) for x in array.mean(axis=0)], ", ".join(f"{r:.4f}" for r in array[:, 0]),
                            f"{p['rmse']:.4f} [{p['low']:.4f}, {p['high']:.4f}]"])  # fmt: skip
    info = machine()
    markdown = (
        "# Matrix factorization on MovieLens 100K\n\n"
        f"Generated by `python bench/mf_quality.py --folds {args.folds} --seed {args.seed} "
        f"--topk-seeds {args.topk_seeds}` "
        f"on {info['cpu']} ({info['cores']} cores, {info['memory']}), commit {info['commit']}, {info['date']}.\n"
        f"Versions: {', '.join(f'{k} {v}' for k, v in info['versions'].items())}.\n\n"
        f"## Ratings: folds {args.folds} (mean over folds)\n\n"
        + table(["model", "RMSE", "MAE", "train s", "RMSE per fold", "pooled RMSE [95% over ratings]"], rating_rows)
        + ("\nSurprise is not installed: its rows are missing.\n" if surprise is None else "")
        + "\n## Implicit top-K: leave-last-out, full ranking, training items excluded\n\n"
        + f"Mean over training seeds {seeds} (the split is the same); peers: the point of a 24-point grid chosen on a validation part (leave-last-out of the training part).\n\n"
        + table(
            ["model", "Recall@10", "NDCG@10", "train s", "Recall@10 per seed"],
            [[k, *v] for k, v in topk.items()],
        )
        + "\nDefaults of each tfrec model come from its config dataclass (see `tfrec models`).\n"
    )
    payload = {"machine": info, "seed": args.seed, "folds": folds, "ratings": ratings, "pooled": pooled, "topk": topk}
    write("mf_quality", payload, markdown)


if __name__ == "__main__":
    main()
