"""The music example: Last.fm-2k play counts with Spotify audio features (warm and cold).

Warm: a seeded random 20% of the user-artist pairs is the test part (HetRec has no
timestamps on plays, so there is no leave-last-out); full-ranking Recall@10 / NDCG@10 with
training artists left out. Every tuned model gets the same budget: a 4-point grid scored
on a validation part (a random 10% of the training part), the chosen point refitted on
the whole training part and scored once on the test part. Models: the audio + history
two-tower (dense ``audio_*`` features, a 50-artist history, id dropout 0.2, log
play-count confidence: fixed a priori, not tuned), the id-only two_tower, implicit_mf,
ials and `implicit`'s ALS (both with log1p play counts as confidence), and popularity.
Paired bootstrap intervals (`tfrec.evaluation.compare`) for the audio model against the
id-only two_tower, overall and by the user's training history length.

Cold: a seeded 20% of the artists that have audio features are held out with all their
plays; users rank only those artists (`cold-start` protocol), over three such splits
(seeds 0, 1, 2). The audio model (the warm split's chosen config, with its feature path's
hidden layer (none or 64 ReLU units) and ``id_dropout`` (0.2 / 0.5 / 0.8) chosen on a
cold validation split: 20% of the audio artists of seed 0's training part held out) against non-oracle baselines fitted on the training
artists only: random, popularity-from-audio (ridge regression of an artist's log
play-count on its normalized audio vector) and an audio profile (cosine between the
user's log-play-weighted mean audio vector and the artist's), with paired bootstrap
intervals against the audio profile.

Usage: python bench/music.py [--seed 0]
Writes bench/results/music.{md,json}.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import SHARED_DATA, machine, table, write
from peers import implicit_model

import tfrec
from tfrec._keras import tf
from tfrec.data import Interactions, Split, Vocabulary, split
from tfrec.data.splits import _by_mask
from tfrec.evaluation import Popularity
from tfrec.models.scoring import Scorer
from tfrec.training import train

AUDIO = {"dense_features": ("audio_*",), "history_length": 50, "id_dropout": 0.2, "confidence": "log"}
TOWER_GRID = [{"epochs": e, "temperature": t} for e in (5, 15) for t in (1.0, 0.3)]
GRIDS = {
    "two_tower (audio + history)": ("tfrec", "two_tower", [{**AUDIO, **p} for p in TOWER_GRID]),
    "two_tower (ids only)": ("tfrec", "two_tower", TOWER_GRID),
    "implicit_mf": ("tfrec", "implicit_mf", [{"epochs": e, "temperature": t} for e in (5, 15) for t in (1.0, 0.3)]),
    "ials (log plays)": ("tfrec", "ials", [{"confidence": "log", "alpha": a, "regularization": r}
                                           for a in (1.0, 10.0) for r in (0.01, 0.1)]),
    "implicit ALS (log plays)": ("als", None, [{"factors": 64, "regularization": r, "alpha": a, "iterations": 15}
                                               for r in (0.01, 0.1) for a in (1.0, 10.0)]),
}  # fmt: skip
COLD_SEEDS = (0, 1, 2)
# The cold stage's grid (on a cold validation split): the feature path's depth and id dropout.
COLD_GRID = [{"dense_hidden_units": h, "id_dropout": r} for h in ((), (64,)) for r in (0.2, 0.5, 0.8)]


def fit(kind: str, name: str | None, params: dict, data: Interactions, seed: int):
    if kind == "tfrec":
        return train(name, data, seed=seed, verbose=0, **params).model
    return implicit_model(kind, data, seed, values=np.log1p(data.frame["weight"].to_numpy()), **params)


def audio_matrix(data: Interactions, ids) -> np.ndarray:
    columns = [c for c in data.items.columns if c.startswith("audio_")]
    return data.items.loc[list(ids), columns].to_numpy(np.float64)


class AudioBaseline(Scorer):
    """Non-oracle cold-start baselines from audio vectors, fitted on the training artists.

    ``popularity``: ridge regression of log(1 + plays) on the normalized audio vector;
    ``profile``: cosine between the user's log-play-weighted mean vector and the item's;
    ``random``: a fixed random score per item."""

    def __init__(self, kind: str, train_part: Interactions, seed: int = 0) -> None:
        self.kind, self.data = kind, train_part
        self.item_vocabulary = Vocabulary.from_interactions(train_part).items
        items = train_part.items
        warm = [i for i in self.item_vocabulary if bool(items.loc[i, "has_audio"])]
        x = audio_matrix(train_part, warm)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-9
        z = (x - self.mean) / self.std
        plays = train_part.frame.groupby("item_id")["weight"].sum().reindex(warm).to_numpy()
        design = np.hstack([z, np.ones((len(z), 1))])
        self.coef = np.linalg.solve(design.T @ design + np.eye(design.shape[1]), design.T @ np.log1p(plays))
        frame = train_part.frame[train_part.frame["item_id"].isin(warm)]
        weights = np.log1p(frame["weight"].to_numpy())
        vectors = (audio_matrix(train_part, frame["item_id"]) - self.mean) / self.std
        sums = {}
        for user, w, v in zip(frame["user_id"], weights, vectors):
            sums[user] = sums.get(user, 0) + w * v
        self.profiles = {u: v / (np.linalg.norm(v) + 1e-9) for u, v in sums.items()}
        self.rng = np.random.default_rng(seed)

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        users = [u.decode() for u in user_ids.numpy()]
        if self.kind == "profile":
            width = len(self.mean)
            return tf.constant(np.stack([self.profiles.get(u, np.zeros(width)) for u in users]), tf.float32)
        return tf.ones([len(users), 1])

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        ids = [i.decode() for i in item_ids.numpy()]
        z = np.nan_to_num((audio_matrix(self.data, ids) - self.mean) / self.std)
        if self.kind == "profile":
            return tf.constant(z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-9), tf.float32)
        if self.kind == "popularity":
            return tf.constant((np.hstack([z, np.ones((len(z), 1))]) @ self.coef)[:, None], tf.float32)
        return tf.constant(self.rng.random((len(ids), 1)), tf.float32)


def cold_audio_split(data: Interactions, fraction: float, seed: int) -> Split:
    """Holds out a seeded ``fraction`` of the artists with audio features, with all their plays."""
    with_audio = np.sort(data.items.index[data.items["has_audio"]].to_numpy())
    played = with_audio[np.isin(with_audio, data.frame["item_id"].unique())]
    held = np.random.default_rng(seed).permutation(played)[: int(round(fraction * len(played)))]
    return _by_mask(data, data.frame["item_id"].isin(held).to_numpy(), f"cold-audio-artists:{fraction:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = tfrec.datasets.load("lastfm-2k-audio", SHARED_DATA / "lastfm-2k-audio")
    parts = split(data, "random:0.2", seed=args.seed, validation="random:0.1")
    whole = split(data, "random:0.2", seed=args.seed)  # the same test part, the whole training part
    models, chosen, seconds, validation = {"popularity": Popularity(whole.train)}, {}, {}, {}
    for label, (kind, name, grid) in GRIDS.items():
        scores = []
        for params in grid:
            model = fit(kind, name, params, parts.train, args.seed)
            scores.append(tfrec.evaluate(model, parts.train, parts.validation, k=[10])["recall@10"])
            print(label, params, "validation R@10", round(scores[-1], 4), flush=True)
        chosen[label], validation[label] = grid[int(np.argmax(scores))], max(scores)
        start = time.perf_counter()
        models[label] = fit(kind, name, chosen[label], whole.train, args.seed)
        seconds[label] = time.perf_counter() - start
    warm_rows, warm = [], {}
    for label, model in models.items():
        metrics = tfrec.evaluate(model, whole.train, whole.test, k=[10])
        warm[label] = {
            **metrics,
            "train_seconds": seconds.get(label),
            "validation_recall@10": validation.get(label),
        }
        warm_rows.append([label, metrics["recall@10"], metrics["ndcg@10"], validation.get(label, "-"),
                          f"{seconds[label]:.1f}" if label in seconds else "-"])  # fmt: skip
        print(label, metrics, flush=True)
    audio, ids = models["two_tower (audio + history)"], models["two_tower (ids only)"]
    history = whole.train.frame.groupby("user_id").size()
    edges = [int(history.min()), *np.quantile(history, [0.25, 0.5, 0.75]).astype(int), int(history.max())]
    buckets = [(edges[0], edges[-1])] + [(a + (j > 0), b) for j, (a, b) in enumerate(zip(edges, edges[1:]))]
    paired, paired_rows = [], []
    for low, high in buckets:
        users = history.index[(history >= low) & (history <= high)]
        test = whole.test.with_frame(whole.test.frame[whole.test.frame["user_id"].isin(users)])
        for metric in ("recall@10", "ndcg@10"):
            result = tfrec.evaluation.compare(audio, ids, whole.train, test, metric=metric, seed=args.seed)
            paired.append({"history": f"{low}-{high}", **result})
            paired_rows.append([f"{low}-{high}", result["users"], metric, result["a"], result["b"],
                                result["difference"], f"[{result['low']:+.4f}, {result['high']:+.4f}]",
                                result["verdict"]])  # fmt: skip
            print("audio vs ids", low, high, result, flush=True)
    audio_config = chosen["two_tower (audio + history)"]
    first = cold_audio_split(data, 0.2, COLD_SEEDS[0])
    inner = cold_audio_split(first.train, 0.2, 100)  # validation: audio artists held out of the training part
    cold_scores = []
    for point in COLD_GRID:
        model = fit("tfrec", "two_tower", {**audio_config, **point}, inner.train, args.seed)
        cold_scores.append(tfrec.evaluate(model, inner.train, inner.test, k=[10], protocol="cold-start")["recall@10"])
        print("cold validation", point, round(cold_scores[-1], 4), flush=True)
    cold_config = {**audio_config, **COLD_GRID[int(np.argmax(cold_scores))]}
    labels = (
        "two_tower (audio + history)",
        "audio profile (cosine)",
        "popularity from audio (ridge)",
        "random",
    )
    cold_results = {label: [] for label in labels}
    cold_paired = []
    for cold_seed in COLD_SEEDS:
        cold = first if cold_seed == COLD_SEEDS[0] else cold_audio_split(data, 0.2, cold_seed)
        cold_models = dict(zip(labels, (
            fit("tfrec", "two_tower", cold_config, cold.train, args.seed),
            AudioBaseline("profile", cold.train, args.seed),
            AudioBaseline("popularity", cold.train, args.seed),
            AudioBaseline("random", cold.train, args.seed),
        )))  # fmt: skip
        for label, model in cold_models.items():
            metrics = tfrec.evaluate(model, cold.train, cold.test, k=[10], protocol="cold-start")
            cold_results[label].append(metrics)
            print("cold", cold_seed, label, metrics, flush=True)
        result = tfrec.evaluation.compare(
            cold_models[labels[0]], cold_models[labels[1]], cold.train, cold.test, protocol="cold-start",
            seed=args.seed,
        )  # fmt: skip
        cold_paired.append({"cold_seed": cold_seed, **result})
    mean = {label: float(np.mean([m["recall@10"] for m in runs])) for label, runs in cold_results.items()}
    cold_rows = [
        [label, mean[label], float(np.mean([m["ndcg@10"] for m in runs])),
         ", ".join(f"{m['recall@10']:.4f}" for m in runs)]
        for label, runs in cold_results.items()
    ]  # fmt: skip
    cold_pair_rows = [[p["cold_seed"], p["users"], p["a"], p["b"], p["difference"],
                       f"[{p['low']:+.4f}, {p['high']:+.4f}]", p["verdict"]] for p in cold_paired]  # fmt: skip
    best_baseline = max(v for k, v in mean.items() if k != labels[0])
    ratio = mean[labels[0]] / best_baseline
    overall = paired[0]  # every user, recall@10
    verdicts = [
        ["warm: audio + history two-tower not worse than id-only two_tower (R@10, 95% interval)",
         "met" if overall["verdict"] != "worse" else "MISSED", f"{overall['difference']:+.4f} {overall['verdict']}"],
        ["cold: audio model R@10 >= 1.5x the best non-oracle baseline (mean of 3 cold splits)",
         "met" if ratio >= 1.5 else "MISSED", f"{ratio:.2f}x"],
    ]  # fmt: skip
    info = machine()
    markdown = (
        "# The music example: Last.fm-2k plays with Spotify audio features\n\n"
        f"Generated by `python bench/music.py --seed {args.seed}` on {info['cpu']} ({info['cores']} cores), "
        f"commit {info['commit']}, {info['date']}.\n\n"
        "## Warm: random 20% of user-artist pairs held out (no timestamps), full ranking\n\n"
        "Each tuned model: best of a 4-point grid by Recall@10 on a validation part (random 10% of the "
        "training part), refitted on the whole training part, scored once on the test part.\n\n"
        + table(["model", "Recall@10", "NDCG@10", "validation R@10", "train s"], warm_rows)
        + "\n\nChosen settings: " + "; ".join(f"{k}: {v}" for k, v in chosen.items())
        + "\n\n### Audio + history vs ids only, by the user's number of training artists (paired bootstrap)\n\n"
        + table(["history", "users", "metric", "audio", "ids only", "difference", "95% interval", "verdict"],
                paired_rows)
        + "\n\n## Cold: 20% of the artists with audio held out entirely (cold-start protocol)\n\n"
        + f"Mean over cold splits {list(COLD_SEEDS)}; the audio model's dense_hidden_units "
        + f"{cold_config['dense_hidden_units']} and id_dropout {cold_config['id_dropout']} were chosen on a cold "
        + "validation split (Recall@10 by hidden units / id_dropout: "
        + ", ".join(f"{p['dense_hidden_units']} / {p['id_dropout']}: {v:.4f}" for p, v in zip(COLD_GRID, cold_scores))
        + "; the audio profile baseline has no setting to tune).\n\n"
        + table(["model", "Recall@10 (mean)", "NDCG@10 (mean)", "Recall@10 per split"], cold_rows)
        + "\n\nAudio two-tower vs audio profile, Recall@10, per cold split (paired bootstrap):\n\n"
        + table(["cold split", "users", "audio two-tower", "audio profile", "difference", "95% interval",
                 "verdict"], cold_pair_rows)
        + "\n\n## Verdicts\n\n" + table(["target", "verdict", "figure"], verdicts)
    )  # fmt: skip
    write(
        "music",
        {"machine": info, "seed": args.seed, "chosen": chosen, "warm": warm, "paired": paired,
         "cold": cold_results, "cold_config": cold_config, "cold_validation": [{**p, "recall@10": v} for p, v in zip(COLD_GRID, cold_scores)],
         "cold_paired": cold_paired, "cold_ratio": ratio, "verdicts": verdicts},
        markdown,
    )  # fmt: skip


if __name__ == "__main__":
    main()
