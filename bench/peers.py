"""Adapters that let peer libraries be ranked by tfrec's own evaluation protocols."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

import tfrec
from tfrec._keras import tf
from tfrec.data import Interactions, Vocabulary
from tfrec.models.scoring import Scorer


class FactorAdapter(Scorer):
    """Exposes user/item factor matrices through the towers ``tfrec.evaluate`` ranks with."""

    task = "retrieval"

    def __init__(self, vocabulary: Vocabulary, user_factors: np.ndarray, item_factors: np.ndarray) -> None:
        self.item_vocabulary = vocabulary.items
        self._users = {u: i for i, u in enumerate(vocabulary.users)}
        self._items = {v: i for i, v in enumerate(vocabulary.items)}
        self._user_factors = np.asarray(user_factors, np.float32)
        self._item_factors = np.asarray(item_factors, np.float32)

    def _rows(self, ids: tf.Tensor, index: dict, factors: np.ndarray) -> tf.Tensor:
        rows = [index.get(i.decode(), -1) for i in ids.numpy()]
        padded = np.vstack([factors, np.zeros((1, factors.shape[1]), np.float32)])
        return tf.constant(padded[rows])

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self._rows(user_ids, self._users, self._user_factors)

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self._rows(item_ids, self._items, self._item_factors)


def user_items(train: Interactions, vocabulary: Vocabulary, values: np.ndarray | None = None) -> sp.csr_matrix:
    """The users x items matrix of a training split, in vocabulary order: binary, or
    ``values`` per interaction (e.g. ``log1p`` of play counts, which ``implicit``'s ALS
    turns into the confidence ``1 + alpha * value``)."""
    users = {u: i for i, u in enumerate(vocabulary.users)}
    items = {v: i for i, v in enumerate(vocabulary.items)}
    rows = train.frame["user_id"].map(users).to_numpy()
    cols = train.frame["item_id"].map(items).to_numpy()
    data = np.ones(len(rows), np.float32) if values is None else np.asarray(values, np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(len(users), len(items)))
    if values is None:
        matrix.data[:] = 1.0  # repeated pairs count once
    return matrix


def implicit_model(
    kind: str, train: Interactions, seed: int, values: np.ndarray | None = None, **params
) -> FactorAdapter:
    """Fits ``implicit``'s ALS or BPR on a training split (``values``: per-interaction
    matrix entries, binary by default) and wraps its factors."""
    import implicit

    vocabulary = Vocabulary.from_interactions(train)
    matrix = user_items(train, vocabulary, values)
    if kind == "als":
        model = implicit.cpu.als.AlternatingLeastSquares(random_state=seed, **params)
    else:
        model = implicit.cpu.bpr.BayesianPersonalizedRanking(random_state=seed, **params)
    model.fit(matrix, show_progress=False)
    return FactorAdapter(vocabulary, model.user_factors, model.item_factors)


def seed_mean(runs: list[tuple[float, float, float]]) -> tuple[float, float, float, str]:
    """Mean Recall@10, NDCG@10 and seconds over seeds, and the Recall@10 of each seed."""
    array = np.asarray(runs, dtype=float)
    return (*[float(x) for x in array.mean(axis=0)], ", ".join(f"{r:.4f}" for r in array[:, 0]))


# `implicit`'s grids: factors, regularization, iterations and alpha (ALS) or learning rate
# (BPR); 24 points each, the budget tfrec's models get in bench/verdicts.py.
IMPLICIT_GRIDS = {
    "als": [{"factors": f, "regularization": r, "alpha": a, "iterations": it}
            for f in (32, 64, 128) for r in (0.01, 0.1) for a in (1.0, 10.0) for it in (15, 30)],
    "bpr": [{"factors": f, "learning_rate": lr, "regularization": r, "iterations": it}
            for f in (32, 64, 128) for lr in (0.01, 0.05) for r in (0.001, 0.01) for it in (100, 300)],
}  # fmt: skip


def best_on_validation(fit, grid: list[dict], tuning) -> dict:
    """The grid point whose model, ``fit(params, train)``, has the best Recall@10 on
    ``tuning.validation`` (trained on ``tuning.train``; the test part is never read)."""

    def recall(params: dict) -> float:
        value = tfrec.evaluate(fit(params, tuning.train), tuning.train, tuning.validation, k=[10])["recall@10"]
        print("validation", params, round(value, 4), flush=True)
        return value

    return max(grid, key=recall)


def implicit_peers(parts, tuning, seeds: list[int]) -> dict[str, tuple[float, float, float, str]]:
    """`implicit` ALS and BPR, each at the point of its grid chosen on a validation part.

    ``tuning`` is the same split with a validation part held out of its training part;
    the chosen point is refitted on ``parts.train`` once per seed and scored on
    ``parts.test``: ``(mean Recall@10, mean NDCG@10, mean train seconds, Recall@10 per
    seed)``, labelled with the chosen point.
    """
    try:
        import implicit  # noqa: F401
    except ImportError:
        return {}
    out = {}
    for kind, grid in IMPLICIT_GRIDS.items():
        chosen = best_on_validation(lambda p, t, kind=kind: implicit_model(kind, t, seeds[0], **p), grid, tuning)
        runs = []
        for seed in seeds:
            start = time.perf_counter()
            model = implicit_model(kind, parts.train, seed, **chosen)
            seconds = time.perf_counter() - start
            metrics = tfrec.evaluate(model, parts.train, parts.test, k=[10])
            runs.append((metrics["recall@10"], metrics["ndcg@10"], seconds))
        label = f"implicit {kind.upper()} (chosen on validation: {', '.join(f'{k}={v}' for k, v in chosen.items())})"
        out[label] = seed_mean(runs)
        print(label, out[label], flush=True)
    return out


class TutorialTwoTower(Scorer):
    """The TFRS basic-retrieval tutorial model, faithfully: the reference TF implementation.

    StringLookup + Embedding towers inside the model (ids looked up every step),
    ``tfrs.tasks.Retrieval`` with ``FactorizedTopK`` metrics over all candidates, Adagrad
    0.1, batch 8192. ``metrics=False`` turns the training-time top-K metrics off (the
    faster configuration the speed comparison uses).
    """

    task = "retrieval"

    def __init__(self, train: Interactions, embedding_dim: int = 32, metrics: bool = False) -> None:
        import tensorflow_recommenders as tfrs

        from tfrec._keras import keras

        vocabulary = Vocabulary.from_interactions(train)
        self.item_vocabulary = vocabulary.items
        users = sorted(vocabulary.users)
        items = sorted(vocabulary.items)
        self.user_model = keras.Sequential(
            [keras.layers.StringLookup(vocabulary=users, mask_token=None),
             keras.layers.Embedding(len(users) + 1, embedding_dim)]
        )  # fmt: skip
        self.item_model = keras.Sequential(
            [keras.layers.StringLookup(vocabulary=items, mask_token=None),
             keras.layers.Embedding(len(items) + 1, embedding_dim)]
        )  # fmt: skip
        candidates = tf.data.Dataset.from_tensor_slices(np.asarray(items, dtype=object)).batch(128)
        task = tfrs.tasks.Retrieval(
            metrics=tfrs.metrics.FactorizedTopK(candidates=candidates.map(self.item_model))
            if metrics
            else None
        )
        user_model, item_model = self.user_model, self.item_model

        class Tutorial(tfrs.Model):
            def __init__(self):
                super().__init__()
                self.user_model, self.item_model, self.task = user_model, item_model, task

            def compute_loss(self, features, training=False):
                return self.task(
                    self.user_model(features["user_id"]),
                    self.item_model(features["item_id"]),
                    compute_metrics=not training or metrics,
                )

        self.model = Tutorial()
        self.model.compile(optimizer=keras.optimizers.Adagrad(learning_rate=0.1))
        self._train = train

    def fit(self, epochs: int, seed: int = 0, callbacks=None, batch_size: int = 8192) -> float:
        """Trains as the tutorial does (batch 8192 unless told); returns the seconds ``fit`` took."""
        frame = self._train.frame
        ds = tf.data.Dataset.from_tensor_slices(
            {
                "user_id": frame["user_id"].to_numpy(dtype=object),
                "item_id": frame["item_id"].to_numpy(dtype=object),
            }
        )
        ds = ds.shuffle(len(frame), seed=seed, reshuffle_each_iteration=False).batch(batch_size).cache()
        start = time.perf_counter()
        self.model.fit(ds, epochs=epochs, verbose=0, callbacks=callbacks)
        return time.perf_counter() - start

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.user_model(user_ids)

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_model(item_ids)


def top_k_accuracy(model, test: Interactions, k: int = 100) -> float:
    """TFRS's top-K categorical accuracy: the share of test interactions whose item is among
    the user's top ``k`` of the whole catalogue (training items not excluded)."""
    return float(top_k_hits(model, test, k).mean())


def top_k_hits(model, test: Interactions, k: int = 100) -> np.ndarray:
    """Per test interaction, 1 when its item is among the user's top ``k`` of the whole
    catalogue (training items not excluded), else 0 (the terms of ``top_k_accuracy``)."""
    users = np.asarray(sorted(set(test.frame["user_id"])), dtype=object)
    row_of = {u: i for i, u in enumerate(users)}
    catalogue = np.asarray(model.item_vocabulary, dtype=object)
    column_of = {v: j for j, v in enumerate(catalogue)}
    scores = model.score_all(
        model.query_embedding(tf.constant(users)), model.candidate_embedding(tf.constant(catalogue))
    ).numpy()
    hits = np.zeros(len(test.frame))
    for position, (user, item) in enumerate(zip(test.frame["user_id"], test.frame["item_id"])):
        if item in column_of:
            row = scores[row_of[user]]
            hits[position] = float((row > row[column_of[item]]).sum() < k)
    return hits


class RandomScores(Scorer):
    """Scores every (user, item) at random (seeded): the floor any model must clear."""

    task = "retrieval"

    def __init__(self, train: Interactions, seed: int = 0) -> None:
        self.item_vocabulary = Vocabulary.from_interactions(train).items
        self._rng = np.random.default_rng(seed)

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        return tf.constant(self._rng.normal(size=(int(tf.shape(user_ids)[0]), 8)).astype(np.float32))

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        return tf.constant(self._rng.normal(size=(int(tf.shape(item_ids)[0]), 8)).astype(np.float32))
