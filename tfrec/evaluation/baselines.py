"""Non-learned baselines evaluated under the same protocols as the models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrec._keras import tf
from tfrec.data.interactions import ITEM, Interactions
from tfrec.data.sequences import user_runs
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.scoring import Scorer


class Popularity(Scorer):
    """Scores every item by its training interaction count, the same for every user.

    A :class:`~tfrec.models.Scorer` (``query_embedding`` is a column of ones,
    ``candidate_embedding`` the counts), so ``tfrec.evaluate``, ``recommend`` and
    ``score`` treat it exactly as they treat a model.

    Example:
        >>> tfrec.evaluate(tfrec.evaluation.Popularity(split.train), split.train, split.test)
    """

    task = "retrieval"

    def __init__(self, train: Interactions) -> None:
        vocabulary = Vocabulary.from_interactions(train)
        self.item_vocabulary: Sequence[str] = vocabulary.items
        self._counts = dict(zip(vocabulary.items, vocabulary.item_counts))

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        return tf.ones([tf.shape(user_ids)[0], 1], tf.float32)

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        ids = [i.decode() for i in item_ids.numpy()]
        return tf.constant([[float(self._counts.get(i, 0))] for i in ids], tf.float32)


def popular_items(train: Interactions, k: int = 10) -> list[str]:
    """The ``k`` most interacted-with items of a training split."""
    return train.frame[ITEM].value_counts().index[:k].tolist()


class ItemTransitions(Scorer):
    """What came after what, counted: the no-learning baseline of sequence models.

    Over each user's time-ordered training items, an item ``b`` that follows ``a`` within
    ``window`` steps adds ``1 / gap`` to ``T[a, b]``. A user is their last ``last`` items,
    the latest weighted 1, the one before ``decay``, then ``decay**2``...; an item's
    score is the weighted sum of the transitions into it from those items. A
    :class:`~tfrec.models.Scorer` (``query_embedding`` is the weights over the catalogue,
    ``candidate_embedding`` the transitions into each item), so ``tfrec.evaluate`` and
    ``recommend`` treat it as a model.

    Example:
        >>> tfrec.evaluate(tfrec.evaluation.ItemTransitions(split.train), split.train, split.test)
    """

    task = "retrieval"

    def __init__(self, train: Interactions, window: int = 10, last: int = 20, decay: float = 0.8) -> None:
        vocabulary = Vocabulary.from_interactions(train)
        self.item_vocabulary: Sequence[str] = vocabulary.items
        position = {item: j for j, item in enumerate(vocabulary.items)}
        runs = list(user_runs(train, vocabulary.items, "item_transitions"))
        index = np.concatenate([row for _, row in runs]) - 1  # 0-based columns
        user = np.repeat(np.arange(len(runs)), [len(row) for _, row in runs])
        counts = np.zeros((len(position), len(position)), np.float32)
        for gap in range(1, window + 1):  # b is `gap` steps after a, in one user's run
            follows = user[:-gap] == user[gap:]
            np.add.at(counts, (index[:-gap][follows], index[gap:][follows]), 1.0 / gap)
        self._transitions = counts
        self._position = position
        self._recent = {user_id: (row[-last:] - 1).tolist() for user_id, row in runs}
        self.decay = float(decay)

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        weights = np.zeros((int(tf.shape(user_ids)[0]), len(self._position)), np.float32)
        for row, user in enumerate(u.decode() for u in user_ids.numpy()):
            for age, item in enumerate(reversed(self._recent.get(user, []))):
                weights[row, item] += self.decay**age
        return tf.constant(weights)

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        columns = [self._position.get(i.decode(), -1) for i in item_ids.numpy()]
        into = np.zeros((len(columns), len(self._position)), np.float32)
        known = [(row, column) for row, column in enumerate(columns) if column >= 0]
        if known:
            rows, cols = zip(*known)
            into[list(rows)] = self._transitions[:, list(cols)].T
        return tf.constant(into)
