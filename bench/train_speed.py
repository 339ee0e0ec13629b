"""Training speed of tfrec's retrieval models next to the TFRS tutorial model, in one run.

ML-100K, TFRS's basic-retrieval setting (80/20 random split, seed 0): the TFRS tutorial
two-tower (StringLookup + Embedding towers, ``tfrs.tasks.Retrieval``, Adagrad 0.1, batch
8192, 32-d; bench/peers.py) with training-time top-K metrics off and on (as shipped), the
tutorial again (metrics off) at each tfrec model's batch size, and tfrec's ``two_tower``
and ``implicit_mf`` with their defaults (32-d). For each: training examples per second in
the steady state (median epoch after the first, which traces the graph), over the whole
``fit`` call, and top-100 accuracy over the whole catalogue after training, so speed is
compared at the quality each reaches. A tfrec model's verdict compares it with the
tutorial at the same batch size (larger batches are cheaper per example), steady and
whole-fit alike.

Usage: python bench/train_speed.py [--seed 0]   (writes bench/results/train_speed.{md,json})
"""

from __future__ import annotations

import argparse
import statistics

from common import SHARED_DATA, epoch_timer, machine, table, write
from peers import TutorialTwoTower, top_k_accuracy

import tfrec
from tfrec._keras import keras
from tfrec.data import split
from tfrec.training import train

TARGET_RATIO = 3.0


def speeds(examples: int, timer, total_seconds: float) -> dict[str, float]:
    steady = statistics.median(timer.seconds[1:]) if len(timer.seconds) > 1 else timer.seconds[0]
    return {
        "steady_examples_per_s": examples / steady,
        "fit_examples_per_s": examples * len(timer.seconds) / total_seconds,
        "epochs": len(timer.seconds),
        "epoch_seconds": timer.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = tfrec.datasets.load("movielens-100k", SHARED_DATA / "ml-100k")
    parts = split(data, "random:0.2", seed=args.seed)
    examples = len(parts.train)
    rows: dict[str, dict] = {}
    batches = {name: tfrec.models.make_config(name).batch_size for name in ("two_tower", "implicit_mf")}
    runs = [("TFRS tutorial, metrics off", False, 8192), ("TFRS tutorial, metrics on (as shipped)", True, 8192)]
    runs += [(f"TFRS tutorial, metrics off, batch {b}", False, b) for b in sorted(set(batches.values()))]
    for label, metrics, batch_size in runs:
        keras.utils.set_random_seed(args.seed)
        tutorial, timer = TutorialTwoTower(parts.train, metrics=metrics), epoch_timer()
        seconds = tutorial.fit(3, args.seed, callbacks=[timer], batch_size=batch_size)
        rows[label] = speeds(examples, timer, seconds) | {
            "top100": top_k_accuracy(tutorial, parts.test), "batch_size": batch_size,
        }  # fmt: skip
        print(label, rows[label], flush=True)
    for name in ("two_tower", "implicit_mf"):
        timer = epoch_timer()
        result = train(name, parts.train, seed=args.seed, verbose=0, callbacks=[timer])
        rows[f"tfrec {name}"] = speeds(examples, timer, result.train_seconds) | {
            "top100": top_k_accuracy(result.model, parts.test),
            "batch_size": result.config.batch_size,
        }
        print(name, rows[f"tfrec {name}"], flush=True)
    reference = rows["TFRS tutorial, metrics off"]["steady_examples_per_s"]
    for row in rows.values():
        row["ratio_vs_tutorial_metrics_off"] = row["steady_examples_per_s"] / reference
    for name, batch_size in batches.items():
        row, same = rows[f"tfrec {name}"], rows[f"TFRS tutorial, metrics off, batch {batch_size}"]
        row["steady_ratio_same_batch"] = row["steady_examples_per_s"] / same["steady_examples_per_s"]
        row["fit_ratio_same_batch"] = row["fit_examples_per_s"] / same["fit_examples_per_s"]
    info = machine()
    lines = [
        [label, r["batch_size"], f"{r['steady_examples_per_s']:,.0f}", f"{r['fit_examples_per_s']:,.0f}",
         f"{r['ratio_vs_tutorial_metrics_off']:.2f}x",
         f"{r['steady_ratio_same_batch']:.2f}x" if "steady_ratio_same_batch" in r else "",
         f"{r['fit_ratio_same_batch']:.2f}x" if "fit_ratio_same_batch" in r else "", r["epochs"], r["top100"]]
        for label, r in rows.items()
    ]  # fmt: skip
    verdicts = []
    for name in ("two_tower", "implicit_mf"):
        row = rows[f"tfrec {name}"]
        met = (
            min(row["steady_ratio_same_batch"], row["fit_ratio_same_batch"]) >= TARGET_RATIO
            and row["top100"] >= rows["TFRS tutorial, metrics off"]["top100"]
        )
        verdicts.append(
            f"- `{name}`: {row['steady_ratio_same_batch']:.2f}x steady and {row['fit_ratio_same_batch']:.2f}x "
            f"whole-fit the tutorial's speed at the same batch size ({row['batch_size']}); target >= "
            f"{TARGET_RATIO:.0f}x both, at equal or better top-100 accuracy than the tutorial as shipped: "
            f"{'met' if met else 'MISSED'}."
        )
    markdown = (
        "# Training speed: tfrec vs the TFRS tutorial model\n\n"
        f"Generated by `python bench/train_speed.py --seed {args.seed}` on {info['cpu']} "
        f"({info['cores']} cores, {info['memory']}), commit {info['commit']}, {info['date']}.\n"
        f"ML-100K 80/20 random split ({examples:,} training examples), 32-d towers everywhere. "
        "Steady = examples / median epoch time after the first epoch (which traces the graph); "
        "fit = over the whole `fit` call. Top-100 accuracy over all items after training "
        "(tutorial: 3 epochs as shipped; tfrec: its defaults).\n\n"
        + table(
            [
                "model",
                "batch",
                "steady ex/s",
                "fit ex/s",
                "steady vs tutorial (metrics off, batch 8192)",
                "steady vs tutorial, same batch",
                "fit vs tutorial, same batch",
                "epochs",
                "top-100 accuracy",
            ],
            lines,
        )
        + "\n"
        + "\n".join(verdicts)
        + "\n"
    )
    write("train_speed", {"machine": info, "seed": args.seed, "results": rows}, markdown)


if __name__ == "__main__":
    main()
