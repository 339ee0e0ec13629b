"""Matrix-factorization quality on ML-100K, next to Surprise, in one script run.

- Ratings: the five predefined folds u1..u5 (mean over folds): biased_mf, deep_mf and
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
from common import SHARED_DATA, machine, table, write
from peers import implicit_model

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
    )


def implicit_peers(parts, seed: int) -> dict[str, tuple[float, float, float]]:
    """`implicit` ALS and BPR (64 factors), each the best of a small grid chosen on this test split.

    Choosing on the test split flatters the peer, which only makes the comparison harder for tfrec.
    """
    try:
        import implicit  # noqa: F401
    except ImportError:
        return {}
    grids = {
        "implicit ALS (64 factors, best of grid)": ("als", [
            {"factors": 64, "regularization": r, "alpha": a, "iterations": 15} for r in (0.01, 0.1) for a in (1.0, 10.0)
        ]),
        "implicit BPR (64 factors, best of grid)": ("bpr", [
            {"factors": 64, "learning_rate": lr, "regularization": 0.01, "iterations": it} for lr in (0.01, 0.05) for it in (100, 300)
        ]),
    }  # fmt: skip
    out = {}
    for label, (kind, grid) in grids.items():
        best = None
        for params in grid:
            start = time.perf_counter()
            model = implicit_model(kind, parts.train, seed, **params)
            seconds = time.perf_counter() - start
            metrics = tfrec.evaluate(model, parts.train, parts.test, k=[10])
            print(label, params, metrics["recall@10"], flush=True)
            if best is None or metrics["recall@10"] > best[0]:
                best = (metrics["recall@10"], metrics["ndcg@10"], seconds)
        out[label] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", default="u1,u2,u3,u4,u5")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folds = args.folds.split(",")
    data = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    surprise, peers = surprise_models()

    ratings: dict[str, list[tuple[float, float, float]]] = {}
    for fold in folds:
        parts = split(data, f"fold:{fold}")
        for name in ("biased_mf", "deep_mf"):
            result = train(name, parts.train, seed=args.seed, verbose=0)
            metrics = tfrec.evaluate(result.model, parts.train, parts.test)
            ratings.setdefault(name, []).append((metrics["rmse"], metrics["mae"], result.train_seconds))
            print(fold, name, metrics, f"{result.train_seconds:.1f}s", flush=True)
        for name, algo_cls in peers.items():
            ratings.setdefault(name, []).append(run_surprise(surprise, algo_cls, parts, args.seed))
            print(fold, name, ratings[name][-1], flush=True)

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
    for label, (name, overrides) in candidates.items():
        result = train(name, parts.train, seed=args.seed, verbose=0, **overrides)
        metrics = tfrec.evaluate(result.model, parts.train, parts.test, k=[10])
        topk[label] = (metrics["recall@10"], metrics["ndcg@10"], result.train_seconds)
        print(label, metrics, flush=True)
    popularity = tfrec.evaluate(tfrec.evaluation.Popularity(parts.train), parts.train, parts.test, k=[10])
    topk["popularity"] = (popularity["recall@10"], popularity["ndcg@10"], 0.0)
    topk.update(implicit_peers(parts, args.seed))

    rating_rows = []
    for name, runs in ratings.items():
        array = np.asarray(runs)
        rating_rows.append(
            [name, *[float(x) for x in array.mean(axis=0)], ", ".join(f"{r:.4f}" for r in array[:, 0])]
        )
    info = machine()
    markdown = (
        "# Matrix factorization on MovieLens 100K\n\n"
        f"Generated by `python bench/mf_quality.py --folds {args.folds} --seed {args.seed}` "
        f"on {info['cpu']} ({info['cores']} cores, {info['memory']}), commit {info['commit']}, {info['date']}.\n"
        f"Versions: {', '.join(f'{k} {v}' for k, v in info['versions'].items())}.\n\n"
        f"## Ratings: folds {args.folds} (mean over folds)\n\n"
        + table(["model", "RMSE", "MAE", "train s", "RMSE per fold"], rating_rows)
        + ("\nSurprise is not installed: its rows are missing.\n" if surprise is None else "")
        + "\n## Implicit top-K: leave-last-out, full ranking, training items excluded\n\n"
        + table(["model", "Recall@10", "NDCG@10", "train s"], [[k, *v] for k, v in topk.items()])
        + "\nDefaults of each tfrec model come from its config dataclass (see `tfrec models`).\n"
    )
    payload = {"machine": info, "seed": args.seed, "folds": folds, "ratings": ratings, "topk": topk}
    write("mf_quality", payload, markdown)


if __name__ == "__main__":
    main()
