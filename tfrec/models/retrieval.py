"""Retrieval models: a query tower and a candidate tower trained by a RetrievalObjective."""

from __future__ import annotations

from tfrec._keras import tf
from tfrec.models.heads import RetrievalObjective
from tfrec.models.recommender import Recommender


def retrieval_objective(config, item_counts, **negatives: int) -> RetrievalObjective:
    """The :class:`RetrievalObjective` of a config's ``loss``, ``temperature``,
    ``logq_correction`` and ``l2`` (``negatives``: ``num_hard_negatives`` / ``extra_negatives``)."""
    return RetrievalObjective(
        item_counts,
        loss=config.loss,
        temperature=config.temperature,
        logq_correction=config.logq_correction,
        l2=config.l2,
        name="objective",
        **negatives,
    )


class RetrievalModel(Recommender):
    """A retrieval model over a query tower and a candidate tower: the subclass builds
    ``query_tower``, ``candidate_tower`` and ``objective`` (:func:`retrieval_objective`)."""

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        item_index = self.item_index(features["item_id"])
        queries = self.query_from_index(self.user_index(features["user_id"]), training=training)
        candidates = self.candidate_from_index(item_index, training=training)
        return self.objective.loss(
            queries, candidates, item_index, lambda index: self.candidate_from_index(index, training=training)
        )
