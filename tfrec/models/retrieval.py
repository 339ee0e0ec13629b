"""Training objectives shared by the retrieval models (implicit feedback)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow_recommenders as tfrs

from tfrec._keras import tf
from tfrec.models.base import TowerPairMixin, replica_count, replica_mean
from tfrec.models.registry import boolean, one_of, positive

LOSSES = ("softmax", "bpr")

# Rules of the objective's config fields, shared by the retrieval configs.
OBJECTIVE_RULES = {
    "loss": one_of(*LOSSES),
    "temperature": (positive, "a number > 0"),
    "logq_correction": (boolean, "true or false"),
}


class RetrievalObjective(TowerPairMixin, tfrs.Model):
    """In-batch softmax (with log-Q correction) or BPR over ``query``/``candidate`` towers.

    Subclasses build ``self.query_tower`` and ``self.candidate_tower`` (``IdTower``-like
    layers with ``lookup`` and ``from_index``) and call :meth:`_setup_objective`.

    ``softmax`` is TFRS's ``Retrieval`` task: every other positive in the batch is a
    negative; the log-Q correction subtracts ``log P(item in batch)``, estimated from the
    training frequency, so popular items are not over-penalised (Yi et al., RecSys 2019).
    ``bpr`` draws one uniform negative per positive and minimises
    ``-log sigmoid(s_pos - s_neg)`` (Rendle et al., UAI 2009).

    Softmax options: ``extra_negatives`` uniformly drawn items join every batch's
    candidates (the log-Q correction then uses the mixed sampling probability), and
    ``num_hard_negatives`` keeps only the highest-scoring negatives per query (TFRS's
    hard-negative mining).
    """

    task = "retrieval"

    def _setup_objective(
        self,
        item_counts: Sequence[int],
        loss: str,
        temperature: float,
        logq_correction: bool,
        l2: float,
        num_hard_negatives: int = 0,
        extra_negatives: int = 0,
    ) -> None:
        counts = np.asarray(item_counts, dtype=np.float64)
        # Index 0 is the OOV bucket: give it the smallest frequency.
        probability = np.concatenate([[counts.min(initial=1.0)], counts]) / max(counts.sum(), 1.0)
        self.item_probability = tf.constant(probability.astype(np.float32))
        self.retrieval = tfrs.tasks.Retrieval(
            temperature=temperature,
            num_hard_negatives=num_hard_negatives or None,
            remove_accidental_hits=True,
            name="retrieval",
        )
        self._loss_name, self._logq, self._l2 = loss, logq_correction, l2
        self._extra_negatives = int(extra_negatives)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        user_index = self.user_index(features["user_id"])
        item_index = self.item_index(features["item_id"])
        queries = self.query_from_index(user_index, training=training)
        candidates = self.candidate_from_index(item_index, training=training)
        penalty = self._l2 * replica_mean(
            tf.reduce_sum(tf.square(queries), 1) + tf.reduce_sum(tf.square(candidates), 1)
        )
        if self._loss_name == "bpr":
            num_items = tf.shape(self.item_probability, out_type=tf.int64)[0]
            negative_index = tf.random.uniform(tf.shape(item_index), 1, num_items, dtype=tf.int64)
            negatives = self.candidate_from_index(negative_index, training=training)
            margin = tf.reduce_sum(queries * (candidates - negatives), axis=1)
            return -replica_mean(tf.math.log_sigmoid(margin)) + penalty
        candidate_ids = item_index
        if self._extra_negatives:
            extra = self._draw_extra_negatives()
            candidates = tf.concat([candidates, self.candidate_from_index(extra, training=training)], 0)
            candidate_ids = tf.concat([item_index, extra], 0)
        probability = None
        if self._logq:
            # Expected share of the candidate slots each item gets: in-batch positives
            # follow the training frequency, the extra negatives are uniform.
            batch = tf.cast(tf.shape(item_index)[0], tf.float32)
            uniform = 1.0 / tf.cast(tf.shape(self.item_probability)[0] - 1, tf.float32)
            probability = (batch * tf.gather(self.item_probability, candidate_ids)
                           + self._extra_negatives * uniform) / (batch + self._extra_negatives)  # fmt: skip
        loss = self.retrieval(
            queries,
            candidates,
            candidate_sampling_probability=probability,
            candidate_ids=candidate_ids,
            compute_metrics=False,
            compute_batch_metrics=False,
        )
        # TFRS sums over the batch; the mean keeps the learning rate independent of it.
        return loss / tf.cast(tf.shape(queries)[0] * replica_count(), tf.float32) + penalty

    def _draw_extra_negatives(self) -> tf.Tensor:
        """Indices of ``extra_negatives`` uniformly drawn known items (never the OOV row)."""
        num_items = tf.shape(self.item_probability, out_type=tf.int64)[0]
        return tf.random.uniform([self._extra_negatives], 1, num_items, dtype=tf.int64)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        queries = self.query_from_index(self.user_index(inputs["user_id"]), training=training)
        candidates = self.candidate_from_index(self.item_index(inputs["item_id"]), training=training)
        return tf.reduce_sum(queries * candidates, axis=1)
