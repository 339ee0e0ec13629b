"""Order matters: sequence models against transition counts and the order-blind models.

Leave-last-out full ranking (each user's latest item held out, every training item of
theirs left out of the ranking). Every setting is chosen on a validation part (each
user's second-to-last item, held out of the training part): the sequence models' epoch
count by their per-epoch validation Recall@10 (up to ``--max-epochs``), the transition
baseline's window / history length / decay on a grid, `implicit` ALS's regularization on
a grid; tfrec's order-blind models keep their defaults. Each is then refitted on the whole
training part and scored once on the test part, for seeds 0, 1, 2 (mean and spread);
the paired bootstrap interval (seed 0) compares sasrec with each other model.

Serving: the seed-0 sasrec is exported (default options) and loaded in this process
through the Python client (``tfrec.serving.ExportedModel``, XLA off as a stock server
runs it); ``recommend`` (a known user: the stored recent items) and
``recommend_from_history`` (the same user's last ``max_length`` items sent as a
history) are timed at batch 1, k = 10, in alternating blocks; p50 and p99 in ms.

Usage: python bench/sequences.py [--dataset movielens-100k] [--max-epochs 80]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED_DATA, machine, table, write
from peers import implicit_model

import tfrec
from tfrec.data import split
from tfrec.evaluation import ItemTransitions, Popularity
from tfrec.training import train

FOLDERS = {"movielens-100k": "ml-100k", "movielens-latest-small": "ml-latest-small"}
SEEDS = (0, 1, 2)
SEQUENCE_MODELS = ("sasrec", "gru4rec")
ORDER_BLIND = ("implicit_mf", "two_tower", "ials")
TRANSITION_GRID = {"window": (1, 5, 10), "last": (5, 20), "decay": (0.5, 0.8, 1.0)}
ALS_GRID = {"regularization": (0.01, 0.1, 1.0)}


def recall(scorer, train_part, test_part) -> float:
    return tfrec.evaluate(scorer, train_part, test_part, k=[10])["recall@10"]


def serving_latency(model, train_part, repeats: int = 300) -> dict[str, dict[str, float]]:
    """p50 / p99 ms of ``recommend`` and ``recommend_from_history`` at batch 1 on the
    export of ``model`` (alternating blocks of 50 calls, 20 discarded first)."""
    frame = train_part.frame.sort_values("timestamp", kind="stable")
    users = frame["user_id"].unique()
    length = model.export_config()["max_length"]
    histories = {u: h.tolist()[-length:] for u, h in frame.groupby("user_id", sort=False)["item_id"]}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = tfrec.export(model, Path(folder) / "sasrec")
        served = tfrec.serving.ExportedModel(path)
        calls = {
            "recommend": lambda u: served.run("recommend", user_id=[u], k=10),
            "recommend_from_history": lambda u: served.run(
                "recommend_from_history", history_item_ids=[histories[u] + [""] * (length - len(histories[u]))],
                history_weights=np.ones((1, length), np.float32), k=[10]),
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():
            for user in users[:20]:
                call(user)
        for _ in range(repeats // 50):
            for name, call in calls.items():
                for user in rng.choice(users, 50):
                    start = time.perf_counter()
                    call(user)
                    times[name].append((time.perf_counter() - start) * 1000.0)
        served.close()
    return {name: {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99))} for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="movielens-100k", choices=sorted(FOLDERS))
    parser.add_argument("--max-epochs", type=int, default=80)
    args = parser.parse_args()
    data = tfrec.datasets.load(args.dataset, SHARED_DATA / FOLDERS[args.dataset])
    tuning = split(data, "leave-last-out", validation="leave-last-out")
    whole = split(data, "leave-last-out")
    chosen: dict[str, dict] = {}
    validation: dict[str, float] = {}

    # === Settings chosen on the validation part ===
    for name in SEQUENCE_MODELS:
        result = train(name, tuning.train, seed=0, verbose=0, epochs=args.max_epochs, validation=tuning.validation)
        curve = result.history["val_recall@10"]
        chosen[name] = {"epochs": int(np.argmax(curve)) + 1}
        validation[name] = float(max(curve))
        print(name, chosen[name], round(validation[name], 4), flush=True)
    best = None
    for window, last, decay in itertools.product(*TRANSITION_GRID.values()):
        value = recall(ItemTransitions(tuning.train, window=window, last=last, decay=decay), tuning.train,
                       tuning.validation)  # fmt: skip
        if best is None or value > best[0]:
            best = (value, {"window": window, "last": last, "decay": decay})
    validation["item_transitions"], chosen["item_transitions"] = best
    try:
        import implicit  # noqa: F401

        peers = True
    except ImportError:
        peers = False
    if peers:
        best = None
        for regularization in ALS_GRID["regularization"]:
            params = {"factors": 64, "regularization": regularization, "iterations": 15}
            value = recall(implicit_model("als", tuning.train, 0, **params), tuning.train, tuning.validation)
            if best is None or value > best[0]:
                best = (value, params)
        validation["implicit ALS"], chosen["implicit ALS"] = best
    for name in ORDER_BLIND:
        chosen[name] = {}

    # === The test part, once per seed ===
    def fit(name: str, seed: int):
        if name == "item_transitions":
            return ItemTransitions(whole.train, **chosen[name])
        if name == "implicit ALS":
            return implicit_model("als", whole.train, seed, **chosen[name])
        return train(name, whole.train, seed=seed, verbose=0, **chosen[name]).model

    scores: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    first: dict[str, object] = {}
    for name in [*SEQUENCE_MODELS, "item_transitions", *ORDER_BLIND, *(["implicit ALS"] if peers else [])]:
        for seed in SEEDS if name != "item_transitions" else (0,):
            start = time.perf_counter()
            model = fit(name, seed)
            seconds.setdefault(name, time.perf_counter() - start)
            metrics = tfrec.evaluate(model, whole.train, whole.test, k=[10])
            scores.setdefault(name, []).append({"recall@10": metrics["recall@10"], "ndcg@10": metrics["ndcg@10"]})
            first.setdefault(name, model)
            print(name, seed, round(metrics["recall@10"], 4), flush=True)
    popularity = tfrec.evaluate(Popularity(whole.train), whole.train, whole.test, k=[10])

    rows, summary = [], {}
    for name, runs in scores.items():
        r = np.asarray([run["recall@10"] for run in runs])
        n = np.asarray([run["ndcg@10"] for run in runs])
        summary[name] = {"recall@10": float(r.mean()), "recall@10_std": float(r.std()), "ndcg@10": float(n.mean()),
                         "runs": runs, "chosen": chosen.get(name, {}), "validation_recall@10": validation.get(name),
                         "train_seconds": round(seconds[name], 1)}  # fmt: skip
        spread = f"{r.mean():.4f} ± {r.std():.4f}" if len(r) > 1 else f"{r.mean():.4f} (no randomness)"
        rows.append([name, spread, float(n.mean()), validation.get(name, "-") or "-", f"{seconds[name]:.1f}",
                     str(chosen.get(name, {}) or "defaults")])  # fmt: skip
    rows.append(["popularity", f"{popularity['recall@10']:.4f}", popularity["ndcg@10"], "-", "-", "-"])
    comparisons = []
    for other in [n for n in scores if n != "sasrec"]:
        verdict = tfrec.evaluation.compare(first["sasrec"], first[other], whole.train, whole.test, metric="recall@10")
        comparisons.append([f"sasrec - {other}", verdict["difference"], f"[{verdict['low']:+.4f}, {verdict['high']:+.4f}]",
                            verdict["verdict"]])  # fmt: skip
    latency = serving_latency(first["sasrec"], whole.train)
    latency_ratio = latency["recommend_from_history"]["p50_ms"] / latency["recommend"]["p50_ms"]
    blind = max(summary[n]["recall@10"] for n in ORDER_BLIND)
    ratio = summary["sasrec"]["recall@10"] / blind
    info = machine()
    markdown = (
        f"# Sequences: {args.dataset}, leave-last-out, full ranking\n\n"
        f"Generated by `python bench/sequences.py --dataset {args.dataset} --max-epochs {args.max_epochs}` on "
        f"{info['cpu']} ({info['cores']} cores), commit {info['commit']}, {info['date']}.\n\n"
        "Settings chosen on a validation part (each user's second-to-last item); refitted on the whole training "
        "part; Recall@10 mean ± standard deviation over seeds 0, 1, 2.\n\n"
        + table(["model", "Recall@10", "NDCG@10", "validation R@10", "train s (seed 0)", "chosen"], rows)
        + "\nPaired bootstrap, seed 0, Recall@10:\n\n"
        + table(["comparison", "difference", "95% interval", "verdict"], comparisons)
        + f"\nsasrec / best order-blind tfrec model (mean Recall@10): {ratio:.2f}x (target 1.5x).\n"
        + "\nServing the seed-0 sasrec export (Python client, batch 1, k = 10):\n\n"
        + table(["signature", "p50 ms", "p99 ms"],
                [[name, f"{v['p50_ms']:.2f}", f"{v['p99_ms']:.2f}"] for name, v in latency.items()])
        + f"\nrecommend_from_history / recommend p50: {latency_ratio:.2f}x (target within 1.5x).\n"
        + ("" if peers else "\n`implicit` is not installed (`make bench-peers`): ALS was not run.\n")
    )
    write(f"sequences_{FOLDERS[args.dataset].replace('-', '_')}", {"machine": info, "models": summary,
          "comparisons": comparisons, "ratio_to_order_blind": ratio,
          "serving": latency, "serving_ratio": latency_ratio}, markdown)  # fmt: skip


if __name__ == "__main__":
    main()
