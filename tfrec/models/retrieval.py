"""Training objectives shared by the retrieval models (implicit feedback)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow_recommenders as tfrs

from tfrec._keras import tf
from tfrec.models.base import TowerPairMixin, replica_mean
from tfrec.models.registry import boolean, one_of, positive

LOSSES = ("softmax", "bpr")

# Rules of the objective's config fields, shared by the retrieval configs.
OBJECTIVE_RULES = {
    "loss": one_of(*LOSSES),
    "temperature": (positive, "a number > 0"),
    "logq_correction": (boolean, "true or false"),
}


def in_batch_softmax(
    queries: tf.Tensor,
    candidates: tf.Tensor,
    candidate_ids: tf.Tensor,
    probability: tf.Tensor | None = None,
    temperature: float = 1.0,
    num_hard_negatives: int = 0,
) -> tf.Tensor:
    """Per-query softmax cross-entropy where query ``r``'s positive is candidate ``r``.

    The formula of TFRS's ``Retrieval`` task (logits ``q c^T / temperature - log p``,
    accidental hits removed, optional hard-negative mining), written with integer labels
    and a sparse cross-entropy instead of TFRS's dense one-hot ``[B, C]`` labels (fewer
    passes over the largest tensors of a step; at the default batch of 256 the difference
    was within noise). ``tests/test_retrieval_loss.py`` checks it against hand computations.

    Args:
        queries: ``[B, d]`` query embeddings.
        candidates: ``[C, d]`` candidate embeddings, ``C >= B``; the first ``B`` are the positives.
        candidate_ids: ``[C]`` item indices: a candidate with the same id as row ``r``'s
            positive (other than column ``r``) is an accidental hit and is left out.
        probability: ``[C]`` sampling probabilities for the log-Q correction, or None.
        temperature: Logits are divided by it.
        num_hard_negatives: Keep only this many highest-scoring negatives per query (0: all).

    Returns:
        ``[B]`` losses.
    """
    logits = tf.matmul(queries, candidates, transpose_b=True) / temperature
    if probability is not None:
        logits -= tf.math.log(probability)[None, :]
    batch = tf.shape(queries)[0]
    columns = tf.range(tf.shape(candidates)[0])
    is_positive = tf.equal(tf.range(batch)[:, None], columns[None, :])
    duplicate = tf.equal(candidate_ids[:batch, None], candidate_ids[None, :])
    logits = tf.where(duplicate & ~is_positive, logits.dtype.min, logits)
    labels = tf.range(batch)
    if num_hard_negatives:
        positive = tf.linalg.diag_part(logits)
        negatives = tf.where(is_positive, logits.dtype.min, logits)
        k = tf.minimum(num_hard_negatives, tf.shape(candidates)[0] - 1)
        hardest = tf.math.top_k(negatives, k=k).values
        logits = tf.concat([positive[:, None], hardest], axis=1)
        labels = tf.zeros_like(labels)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)


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
        self._temperature, self._num_hard_negatives = float(temperature), int(num_hard_negatives)
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
        losses = in_batch_softmax(
            queries, candidates, candidate_ids, probability, self._temperature, self._num_hard_negatives
        )
        return replica_mean(losses) + penalty

    def _draw_extra_negatives(self) -> tf.Tensor:
        """Indices of ``extra_negatives`` uniformly drawn known items (never the OOV row)."""
        num_items = tf.shape(self.item_probability, out_type=tf.int64)[0]
        return tf.random.uniform([self._extra_negatives], 1, num_items, dtype=tf.int64)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        queries = self.query_from_index(self.user_index(inputs["user_id"]), training=training)
        candidates = self.candidate_from_index(self.item_index(inputs["item_id"]), training=training)
        return tf.reduce_sum(queries * candidates, axis=1)
