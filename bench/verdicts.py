"""Paired verdicts with intervals: tfrec models against peers, each tuned alike.

Rankings: ML-100K, leave-last-out (seed 0). `implicit` ALS and BPR, implicit_mf and
two_tower each get a 24-point grid (peers.IMPLICIT_GRIDS and TFREC_GRIDS below) scored by
Recall@10 on a validation part (the leave-last-out of the training part); the chosen point
is refitted on the whole training part. tfrec's models are also run at their registered
defaults. Each pair is compared on the test split with `tfrec.evaluation.compare`: the
Recall@10 / NDCG@10 difference with a 95% paired bootstrap interval over users, and a
verdict (better / worse / tie).

Ratings (when scikit-surprise is installed): ML-100K folds u1..u5. biased_mf, Surprise's
SVD and SVD++ each get the same budget, an 18-point grid scored by RMSE on a validation part
(a random 10% of fold u1's training part); the chosen point is refitted on each fold's
training part and scored once on that fold's test part. Each verdict pools the five test
parts (every rating once): the RMSE difference with a 95% paired bootstrap interval over
ratings (`tfrec.evaluation.error_difference`).

Usage: python bench/verdicts.py [--seed 0]
Writes bench/results/verdicts.{md,json}.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import SHARED_DATA, machine, table, write
from peers import IMPLICIT_GRIDS, best_on_validation, implicit_model

import tfrec
from tfrec.data import split
from tfrec.evaluation import error_difference, rmse
from tfrec.training import train

TFREC_GRIDS = {
    "implicit_mf": [{"embedding_dim": d, "temperature": t, "learning_rate": lr, "epochs": e}
                    for d in (32, 64, 128) for t in (0.5, 1.0) for lr in (5e-3, 1e-2) for e in (10, 20)],
    "two_tower": [{"embedding_dim": d, "temperature": t, "batch_size": b, "epochs": e}
                  for d in (32, 64, 128) for t in (0.5, 1.0) for b in (512, 1024) for e in (10, 20)],
}  # fmt: skip
# (a, b): each tfrec model tuned alike against each peer; then at its defaults.
PAIRS = (("implicit_mf (tuned)", "implicit ALS"), ("implicit_mf (tuned)", "implicit BPR"),
         ("two_tower (tuned)", "implicit ALS"), ("implicit_mf (default)", "implicit ALS"),
         ("two_tower (default)", "implicit ALS"))  # fmt: skip
RATING_GRIDS = {
    "biased_mf": [{"embedding_dim": d, "l2_factors": l2, "learning_rate": lr, "epochs": e}
                  for d in (32, 64, 128) for l2 in (0.11, 0.15, 0.2) for lr, e in ((1e-3, 30), (2e-3, 20))],
    "surprise SVD": [{"n_factors": f, "reg_all": r, "lr_all": lr, "n_epochs": e}
                     for f in (50, 100, 200) for r in (0.05, 0.1, 0.2) for lr, e in ((0.01, 30), (0.01, 50))],
    "surprise SVD++": [{"n_factors": f, "reg_all": r, "lr_all": lr, "n_epochs": e}
                       for f in (20, 50, 100) for r in (0.02, 0.05, 0.1) for lr, e in ((0.005, 30), (0.007, 50))],
}  # fmt: skip


def at_edges(chosen: dict, grid: list[dict]) -> list[str]:
    """The fields whose chosen value is the lowest or highest its grid tried."""
    edges = []
    for field, value in chosen.items():
        values = sorted({point[field] for point in grid})
        if len(values) > 1 and value in (values[0], values[-1]):
            edges.append(f"{field}={value}")
    return edges


def rating_predictions(name: str, params: dict, train_part, test_part, seed: int) -> np.ndarray:
    """Predicted ratings of ``test_part`` by ``name`` fitted on ``train_part`` with ``params``."""
    frame = test_part.frame
    if name == "biased_mf":
        model = train(name, train_part, seed=seed, verbose=0, **params).model
        return model.score(frame["user_id"].to_numpy(), frame["item_id"].to_numpy())
    import surprise

    reader = surprise.Reader(rating_scale=(1, 5))
    trainset = surprise.Dataset.load_from_df(train_part.frame[["user_id", "item_id", "rating"]], reader)
    algo = (surprise.SVDpp if name == "surprise SVD++" else surprise.SVD)(random_state=seed, **params)
    algo.fit(trainset.build_full_trainset())
    return np.asarray([algo.predict(u, i).est for u, i in zip(frame["user_id"], frame["item_id"])])


def rating_verdict(seed: int, samples: int = 2000) -> dict | None:
    """biased_mf against Surprise SVD and SVD++, each tuned on validation parts alike (None
    without Surprise); the top level holds the SVD verdict."""
    try:
        import surprise  # noqa: F401
    except ImportError:
        return None
    data = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    tuning = split(data, "fold:u1", seed=seed, validation="random:0.1")
    target = tuning.validation.frame["rating"].to_numpy(np.float64)
    chosen = {}
    for name, grid in RATING_GRIDS.items():
        scored = [rmse(target, rating_predictions(name, p, tuning.train, tuning.validation, seed)) for p in grid]
        best = grid[int(np.argmin(scored))]
        chosen[name] = {"chosen": best, "validation_rmse": min(scored), "at_edges": at_edges(best, grid)}
        print(name, "chosen on u1's validation part:", chosen[name], flush=True)
    folds, truth, predicted = {}, [], {name: [] for name in RATING_GRIDS}
    for fold in ("u1", "u2", "u3", "u4", "u5"):
        whole = split(data, f"fold:{fold}")
        truth.append(whole.test.frame["rating"].to_numpy(np.float64))
        for name in RATING_GRIDS:
            predicted[name].append(rating_predictions(name, chosen[name]["chosen"], whole.train, whole.test, seed))
            folds.setdefault(fold, {})[name] = rmse(truth[-1], predicted[name][-1])
        print(fold, folds[fold], flush=True)
    y = np.concatenate(truth)
    ours = np.concatenate(predicted["biased_mf"])
    verdicts = {}
    for name in RATING_GRIDS:
        if name != "biased_mf":
            verdicts[name] = error_difference(y, ours, np.concatenate(predicted[name]), samples=samples, seed=seed)
            print("biased_mf vs", name, verdicts[name], flush=True)
    return {"chosen": chosen, "folds": folds, "against": verdicts, **verdicts["surprise SVD"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    parts = split(data, "leave-last-out", seed=args.seed, validation="leave-last-out")
    whole = split(data, "leave-last-out", seed=args.seed)  # the same test part, the whole training part
    models, chosen = {}, {}
    for kind, grid in IMPLICIT_GRIDS.items():
        label = f"implicit {kind.upper()}"
        chosen[label] = best_on_validation(lambda p, t, kind=kind: implicit_model(kind, t, args.seed, **p), grid, parts)
        models[label] = implicit_model(kind, whole.train, args.seed, **chosen[label])
        print(label, "chosen on validation:", chosen[label], flush=True)
    for name, grid in TFREC_GRIDS.items():
        def fit(params, data, name=name):
            return train(name, data, seed=args.seed, verbose=0, **params).model

        chosen[f"{name} (tuned)"] = best_on_validation(fit, grid, parts)
        models[f"{name} (tuned)"] = fit(chosen[f"{name} (tuned)"], whole.train)
        models[f"{name} (default)"] = fit({}, whole.train)
        print(name, "chosen on validation:", chosen[f"{name} (tuned)"], flush=True)
    grids = {**{f"implicit {k.upper()}": g for k, g in IMPLICIT_GRIDS.items()},
             **{f"{k} (tuned)": g for k, g in TFREC_GRIDS.items()}}  # fmt: skip
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
            "\n## Ratings: biased_mf against Surprise SVD and SVD++, tuned alike (ML-100K u1..u5)\n\n"
            "Each model's point of its 18-point grid chosen by RMSE on a validation part (a random 10% of fold "
            "u1's training part), refitted on each fold's training part and scored once on its test part; pooled "
            "over the five test parts, 95% paired bootstrap over ratings (a negative difference: biased_mf "
            "lower).\n\n"
            + table(["model", "chosen on validation", "validation RMSE", "at the grid's edge", *ratings["folds"]],
                    [[n, ", ".join(f"{k}={v}" for k, v in c["chosen"].items()), c["validation_rmse"],
                      ", ".join(c["at_edges"]) or "none", *(ratings["folds"][f][n] for f in ratings["folds"])]
                     for n, c in ratings["chosen"].items()])
            + "\n"
            + table(["a", "b", "a RMSE", "b RMSE", "a - b", "95% interval", "verdict"],
                    [["biased_mf", name, v["a"], v["b"], v["difference"], f"[{v['low']:+.4f}, {v['high']:+.4f}]",
                      v["verdict"]] for name, v in ratings["against"].items()])
        )  # fmt: skip
    markdown = (
        "# Paired verdicts: tfrec against peers, tuned alike\n\n"
        f"Generated by `python bench/verdicts.py --seed {args.seed}` on {info['cpu']} ({info['cores']} cores), "
        f"commit {info['commit']}, {info['date']}.\n"
        "ML-100K leave-last-out; each model's point of its 24-point grid chosen on a validation part of the "
        "training split (the leave-last-out of the training part), refitted on the whole training part; tfrec's "
        "models also at their defaults; 95% paired bootstrap intervals over users. Chosen: "
        f"{'; '.join(f'{k}: ' + ', '.join(f'{f}={v}' for f, v in p.items()) for k, p in chosen.items())}. "
        f"At the edge of its grid: {'; '.join(f'{k}: ' + (', '.join(at_edges(p, grids[k])) or 'none') for k, p in chosen.items())}.\n\n"
        + table(["a", "b", "metric", "a value", "b value", "a - b", "95% interval", "verdict"], rows)
        + rating_text
    )
    payload_all = {"machine": info, "seed": args.seed, "chosen": chosen, "results": payload, "ratings": ratings}
    write("verdicts", payload_all, markdown)


if __name__ == "__main__":
    main()
