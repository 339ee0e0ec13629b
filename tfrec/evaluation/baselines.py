"""Non-learned baselines evaluated under the same protocols as the models."""

from __future__ import annotations

from collections.abc import Sequence

from tfrec._keras import tf
from tfrec.data.interactions import ITEM, Interactions
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
