"""Adapters that let peer libraries be ranked by tfrec's own evaluation protocols."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tfrec._keras import tf
from tfrec.data import Interactions, Vocabulary


class FactorAdapter:
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


def user_items(train: Interactions, vocabulary: Vocabulary) -> sp.csr_matrix:
    """The binary users x items matrix of a training split, in vocabulary order."""
    users = {u: i for i, u in enumerate(vocabulary.users)}
    items = {v: i for i, v in enumerate(vocabulary.items)}
    rows = train.frame["user_id"].map(users).to_numpy()
    cols = train.frame["item_id"].map(items).to_numpy()
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(users), len(items)))
    matrix.data[:] = 1.0  # repeated pairs count once
    return matrix


def implicit_model(kind: str, train: Interactions, seed: int, **params) -> FactorAdapter:
    """Fits ``implicit``'s ALS or BPR on a training split and wraps its factors."""
    import implicit

    vocabulary = Vocabulary.from_interactions(train)
    matrix = user_items(train, vocabulary)
    if kind == "als":
        model = implicit.cpu.als.AlternatingLeastSquares(random_state=seed, **params)
    else:
        model = implicit.cpu.bpr.BayesianPersonalizedRanking(random_state=seed, **params)
    model.fit(matrix, show_progress=False)
    return FactorAdapter(vocabulary, model.user_factors, model.item_factors)
