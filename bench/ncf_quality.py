"""Neural CF and two-tower quality next to the factorization family and peers, in one script run.

- ML-100K, leave-last-out by timestamp (each user's latest interaction held out):
  full ranking over the training catalogue with training items excluded (Recall@10,
  NDCG@10), and the NCF paper's protocol (the test item against 99 sampled items the
  user never interacted with; HR@10, NDCG@10), for gmf, mlp, neumf, two_tower,
  implicit_mf, deep_mf (implicit), biased_mf, popularity, `implicit` ALS/BPR and the TFRS
  tutorial two-tower (10 epochs).
- ml-latest-small, the same leave-last-out full ranking.
- ML-100K, TFRS's basic-retrieval setting: 80/20 random split (seed 0), top-100
  categorical accuracy over the whole catalogue: two_tower, implicit_mf and the TFRS
  tutorial model (32-d, Adagrad 0.1, batch 8192, 3 epochs).

Every tfrec model runs with its defaults. Usage: python bench/ncf_quality.py [--seed 0]
Writes bench/results/ncf_quality.{md,json}.
"""

from __future__ import annotations

import argparse

from common import SHARED_DATA, machine, table, write
from peers import TutorialTwoTower, implicit_peers, top_k_accuracy, top_k_hits

import tfrec
from tfrec.data import split
from tfrec.evaluation.bootstrap import bootstrap_interval
from tfrec.training import train

MODELS = {
    "gmf": ("gmf", {}),
    "mlp": ("mlp", {}),
    "neumf": ("neumf", {}),
    "neumf (pre-trained)": ("neumf", {"pretrain": True}),
    "two_tower": ("two_tower", {}),
    "implicit_mf": ("implicit_mf", {}),
    "deep_mf (implicit)": ("deep_mf", {"feedback": "implicit", "epochs": 20, "batch_size": 1024, "l2": 0.0}),
    "biased_mf (ratings)": ("biased_mf", {}),
}


def leave_last_out(data, seed: int, sampled: bool) -> dict[str, dict[str, float]]:
    parts = split(data, "leave-last-out", seed=seed)
    rows: dict[str, dict[str, float]] = {}

    def record(label, model, seconds):
        metrics = tfrec.evaluate(model, parts.train, parts.test, k=[10], protocol="full")
        bounds = tfrec.evaluation.interval(model, parts.train, parts.test, metric="recall@10", seed=seed)
        row = {"recall@10": metrics["recall@10"], "recall@10_low": bounds["low"], "recall@10_high": bounds["high"],
               "ndcg@10": metrics["ndcg@10"], "train_s": seconds}  # fmt: skip
        if sampled:
            ncf = tfrec.evaluate(model, parts.train, parts.test, k=[10], protocol="sampled:99", seed=seed)
            row.update({"ncf_hr@10": ncf["hit_rate@10"], "ncf_ndcg@10": ncf["ndcg@10"]})
        rows[label] = row
        print(data.name, label, row, flush=True)

    for label, (name, overrides) in MODELS.items():
        result = train(name, parts.train, seed=seed, verbose=0, **overrides)
        record(label, result.model, result.train_seconds)
    record("popularity", tfrec.evaluation.Popularity(parts.train), 0.0)
    tutorial = TutorialTwoTower(parts.train)
    record("TFRS tutorial two-tower (10 epochs)", tutorial, tutorial.fit(10, seed))
    tuning = split(data, "leave-last-out", seed=seed, validation="leave-last-out")
    for label, (recall, ndcg, seconds, _) in implicit_peers(parts, tuning, [seed]).items():
        rows[label] = {"recall@10": recall, "ndcg@10": ndcg, "train_s": seconds}
    return rows


def tfrs_setting(data, seed: int) -> dict[str, dict[str, float]]:
    parts = split(data, "random:0.2", seed=seed)
    rows = {}
    for name in ("two_tower", "implicit_mf"):
        result = train(name, parts.train, seed=seed, verbose=0)
        hits = top_k_hits(result.model, parts.test)
        low, high = bootstrap_interval([hits], lambda x: x, seed=seed)
        rows[name] = {"top100": float(hits.mean()), "top100_low": low, "top100_high": high,
                      "train_s": result.train_seconds}  # fmt: skip
        print("tfrs setting", name, rows[name], flush=True)
    tutorial = TutorialTwoTower(parts.train)
    seconds = tutorial.fit(3, seed)
    rows["TFRS tutorial (32-d, 3 epochs)"] = {
        "top100": top_k_accuracy(tutorial, parts.test),
        "train_s": seconds,
    }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ml100k = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    latest = tfrec.datasets.load("movielens-latest-small", SHARED_DATA / "ml-latest-small")
    results = {
        "ml-100k": leave_last_out(ml100k, args.seed, sampled=True),
        "ml-latest-small": leave_last_out(latest, args.seed, sampled=False),
        "tfrs-setting": tfrs_setting(ml100k, args.seed),
    }
    info = machine()
    ml = results["ml-100k"]
    both = [
        [label, row["recall@10"], f"[{row['recall@10_low']:.4f}, {row['recall@10_high']:.4f}]" if "recall@10_low" in row
         else "-", row["ndcg@10"],
         results["ml-latest-small"].get(label, {}).get("recall@10", "-"),
         results["ml-latest-small"].get(label, {}).get("ndcg@10", "-"), row["train_s"]]
        for label, row in ml.items()
    ]  # fmt: skip
    ncf = [[label, row["ncf_hr@10"], row["ncf_ndcg@10"]] for label, row in ml.items() if "ncf_hr@10" in row]
    tfrs_rows = [[label, row["top100"], f"[{row['top100_low']:.4f}, {row['top100_high']:.4f}]" if "top100_low" in row
                  else "-", row["train_s"]] for label, row in results["tfrs-setting"].items()]  # fmt: skip
    markdown = (
        "# Neural CF and two-tower retrieval\n\n"
        f"Generated by `python bench/ncf_quality.py --seed {args.seed}` on {info['cpu']} "
        f"({info['cores']} cores, {info['memory']}), commit {info['commit']}, {info['date']}.\n"
        f"Versions: {', '.join(f'{k} {v}' for k, v in info['versions'].items())}.\n"
        "Every tfrec model runs with its registered defaults (`tfrec models`; configs in tfrec/models/).\n\n"
        "## Leave-last-out, full ranking (training items excluded)\n\n"
        + table(
            [
                "model",
                "ML-100K R@10",
                "95% over users",
                "ML-100K NDCG@10",
                "latest-small R@10",
                "latest-small NDCG@10",
                "ML-100K train s",
            ],
            both,
        )  # fmt: skip
        + "\n`implicit` peers: the point of a 24-point grid chosen on a validation part (leave-last-out of the training part).\n"
        + "\n## ML-100K, NCF protocol (test item vs 99 sampled negatives)\n\n"
        + table(["model", "HR@10", "NDCG@10"], ncf)
        + "\n## ML-100K, TFRS basic-retrieval setting (80/20 random, top-100 accuracy over all items)\n\n"
        + table(["model", "top-100 accuracy", "95% over test interactions", "train s"], tfrs_rows)
    )
    write("ncf_quality", {"machine": info, "seed": args.seed, "results": results}, markdown)


if __name__ == "__main__":
    main()
