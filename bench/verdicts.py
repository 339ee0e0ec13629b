"""Paired verdicts with intervals: tfrec models against `implicit` peers tuned alike.

ML-100K, leave-last-out (seed 0). The peers' grid point (the same grids as peers.py) is
chosen on a validation part of the training split (leave-last-out of the training part),
never on the test split; the chosen point is then refitted on the whole training part.
tfrec models run at their registered defaults. Each pair is compared on the test split with
`tfrec.evaluation.compare`: the Recall@10 / NDCG@10 difference with a 95% paired bootstrap
interval over users, and a verdict (better / worse / tie).

Ratings (when scikit-surprise is installed): ML-100K folds u1..u5. biased_mf and Surprise's
SVD each get the same budget, an 8-point grid scored by RMSE on a validation part (a random
10% of the fold's training part); the chosen point is refitted on the whole training part
and scored once on the fold's test part. The verdict pools the five test parts (every
rating once): the RMSE difference with a 95% paired bootstrap interval over ratings.

Usage: python bench/verdicts.py [--seed 0]
Writes bench/results/verdicts.{md,json}.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import SHARED_DATA, machine, table, write
from peers import implicit_model

import tfrec
from tfrec.data import split
from tfrec.training import train

GRIDS = {
    "implicit ALS": ("als", [{"factors": 64, "regularization": r, "alpha": a, "iterations": 15}
                             for r in (0.01, 0.1) for a in (1.0, 10.0)]),
    "implicit BPR": ("bpr", [{"factors": 64, "learning_rate": lr, "regularization": 0.01, "iterations": it}
                             for lr in (0.01, 0.05) for it in (100, 300)]),
}  # fmt: skip
PAIRS = (("implicit_mf", "implicit ALS"), ("implicit_mf", "implicit BPR"), ("two_tower", "implicit ALS"))
RATING_GRIDS = {
    "biased_mf": [{"embedding_dim": d, "l2_factors": l2, "learning_rate": lr, "epochs": e}
                  for d in (32, 64) for l2 in (0.05, 0.11) for lr, e in ((1e-3, 30), (2e-3, 20))],
    "surprise SVD": [{"n_factors": f, "reg_all": r, "lr_all": lr, "n_epochs": e}
                     for f in (50, 100) for r in (0.02, 0.05) for lr, e in ((0.005, 20), (0.01, 30))],
}  # fmt: skip


def rating_predictions(name: str, params: dict, train_part, test_part, seed: int) -> np.ndarray:
    """Predicted ratings of ``test_part`` by ``name`` fitted on ``train_part`` with ``params``."""
    frame = test_part.frame
    if name == "biased_mf":
        model = train(name, train_part, seed=seed, verbose=0, **params).model
        return model.score(frame["user_id"].to_numpy(), frame["item_id"].to_numpy())
    import surprise

    reader = surprise.Reader(rating_scale=(1, 5))
    trainset = surprise.Dataset.load_from_df(train_part.frame[["user_id", "item_id", "rating"]], reader)
    algo = surprise.SVD(random_state=seed, **params)
    algo.fit(trainset.build_full_trainset())
    return np.asarray([algo.predict(u, i).est for u, i in zip(frame["user_id"], frame["item_id"])])


def rmse(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def rating_verdict(seed: int, samples: int = 2000) -> dict | None:
    """biased_mf against Surprise SVD, each tuned on validation parts alike (None without Surprise)."""
    try:
        import surprise  # noqa: F401
    except ImportError:
        return None
    data = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    folds, truth, predicted = {}, [], {name: [] for name in RATING_GRIDS}
    for fold in ("u1", "u2", "u3", "u4", "u5"):
        tuning = split(data, f"fold:{fold}", seed=seed, validation="random:0.1")
        whole = split(data, f"fold:{fold}")
        truth.append(whole.test.frame["rating"].to_numpy(np.float64))
        folds[fold] = {}
        for name, grid in RATING_GRIDS.items():
            target = tuning.validation.frame["rating"].to_numpy(np.float64)
            scored = [rmse(target, rating_predictions(name, p, tuning.train, tuning.validation, seed)) for p in grid]
            best = grid[int(np.argmin(scored))]
            predicted[name].append(rating_predictions(name, best, whole.train, whole.test, seed))
            folds[fold][name] = {"chosen": best, "validation_rmse": min(scored),
                                 "test_rmse": rmse(truth[-1], predicted[name][-1])}  # fmt: skip
            print(fold, name, folds[fold][name], flush=True)
    y = np.concatenate(truth)
    a, b = (np.concatenate(predicted[n]) for n in RATING_GRIDS)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(samples):
        rows = rng.integers(0, len(y), len(y))
        differences.append(rmse(y[rows], a[rows]) - rmse(y[rows], b[rows]))
    low, high = np.percentile(differences, [2.5, 97.5])
    verdict = "better" if high < 0 else "worse" if low > 0 else "tie"  # lower RMSE is better
    result = {"a": rmse(y, a), "b": rmse(y, b), "difference": rmse(y, a) - rmse(y, b), "low": float(low),
              "high": float(high), "ratings": len(y), "verdict": verdict}  # fmt: skip
    print("biased_mf vs surprise SVD", result, flush=True)
    return {"folds": folds, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    parts = split(data, "leave-last-out", seed=args.seed, validation="leave-last-out")
    whole = split(data, "leave-last-out", seed=args.seed)  # the same test part, the whole training part
    models, chosen = {}, {}
    for label, (kind, grid) in GRIDS.items():
        def validation_recall(params, kind=kind):
            model = implicit_model(kind, parts.train, args.seed, **params)
            return tfrec.evaluate(model, parts.train, parts.validation, k=[10])["recall@10"]

        chosen[label] = max(grid, key=validation_recall)
        models[label] = implicit_model(kind, whole.train, args.seed, **chosen[label])
        print(label, "chosen on validation:", chosen[label], flush=True)
    for name in {a for a, _ in PAIRS}:
        models[name] = train(name, whole.train, seed=args.seed, verbose=0).model
    rows, payload = [], []
    for a, b in PAIRS:
        for metric in ("recall@10", "ndcg@10"):
            result = tfrec.evaluation.compare(models[a], models[b], whole.train, whole.test, metric=metric, seed=args.seed)
            payload.append({"first": a, "second": b, **result})
            rows.append([a, b, metric, result["a"], result["b"], result["difference"],
                         f"[{result['low']:+.4f}, {result['high']:+.4f}]", result["verdict"]])  # fmt: skip
            print(a, b, result, flush=True)
    ratings = rating_verdict(args.seed)
    info = machine()
    if ratings is None:
        rating_text = "\n## Ratings\n\nscikit-surprise is not installed: the rating verdict was not run.\n"
    else:
        rating_text = (
            "\n## Ratings: biased_mf against Surprise SVD, tuned alike (ML-100K u1..u5)\n\n"
            "Each model's point of its 8-point grid chosen by validation RMSE (a random 10% of each fold's "
            "training part), refitted on the fold's training part, scored once on its test part; pooled over "
            "the five test parts, 95% paired bootstrap over ratings (a negative difference: biased_mf lower).\n\n"
            + table(["fold", "model", "chosen on validation", "validation RMSE", "test RMSE"],
                    [[f, n, ", ".join(f"{k}={v}" for k, v in r["chosen"].items()), r["validation_rmse"],
                      r["test_rmse"]] for f, models in ratings["folds"].items() for n, r in models.items()])
            + "\n"
            + table(["a", "b", "a RMSE", "b RMSE", "a - b", "95% interval", "verdict"],
                    [["biased_mf", "surprise SVD", ratings["a"], ratings["b"], ratings["difference"],
                      f"[{ratings['low']:+.4f}, {ratings['high']:+.4f}]", ratings["verdict"]]])
        )  # fmt: skip
    markdown = (
        "# Paired verdicts: tfrec against `implicit`, tuned alike\n\n"
        f"Generated by `python bench/verdicts.py --seed {args.seed}` on {info['cpu']} ({info['cores']} cores), "
        f"commit {info['commit']}, {info['date']}.\n"
        "ML-100K leave-last-out; peers' grid point chosen on a validation part of the training split "
        f"({', '.join(f'{k}: {v}' for k, v in chosen.items())}), refitted on the whole training part; "
        "tfrec models at their defaults; 95% paired bootstrap intervals over users.\n\n"
        + table(["a", "b", "metric", "a value", "b value", "a - b", "95% interval", "verdict"], rows)
        + rating_text
    )
    payload_all = {"machine": info, "seed": args.seed, "chosen": chosen, "results": payload, "ratings": ratings}
    write("verdicts", payload_all, markdown)


if __name__ == "__main__":
    main()
