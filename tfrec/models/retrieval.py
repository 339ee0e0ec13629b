"""Retrieval models: a query tower and a candidate tower trained by a RetrievalObjective."""

from __future__ import annotations

from tfrec._keras import tf
from tfrec.data.interactions import WEIGHT
from tfrec.models.heads import RetrievalObjective
from tfrec.models.recommender import Recommender


def retrieval_objective(config, item_counts, **options) -> RetrievalObjective:
    """The :class:`RetrievalObjective` of a config's ``loss``, ``temperature``,
    ``logq_correction`` and ``l2`` (``options``: ``num_hard_negatives`` /
    ``extra_negatives`` / ``confidence``, for the configs that have them)."""
    return RetrievalObjective(
        item_counts,
        loss=config.loss,
        temperature=config.temperature,
        logq_correction=config.logq_correction,
        l2=config.l2,
        name="objective",
        **options,
    )


class RetrievalModel(Recommender):
    """A retrieval model over a query tower and a candidate tower: the subclass builds
    ``query_tower``, ``candidate_tower`` and ``objective`` (:func:`retrieval_objective`).
    A batch may carry each positive's ``weight`` (a play count) for the objective's
    confidence."""

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        item_index = self.item_index(features["item_id"])
        queries = self.training_queries(self.user_index(features["user_id"]), item_index, training=training)
        candidates = self.candidate_from_index(item_index, training=training)
        return self.objective.loss(
            queries,
            candidates,
            item_index,
            lambda index: self.candidate_from_index(index, training=training),
            weights=features.get(WEIGHT),
        )

    def training_queries(
        self, user_index: tf.Tensor, item_index: tf.Tensor, training: bool = False
    ) -> tf.Tensor:
        """The query embeddings of a training batch's users, whose positives are ``item_index``
        (a history tower leaves each positive out of its own user's history)."""
        return self.query_from_index(user_index, training=training)
