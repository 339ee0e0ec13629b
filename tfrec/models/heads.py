"""Objectives and heads models hold as layers: the biased dot-product rating head, the
retrieval objective (in-batch softmax with log-Q, extra and hard negatives, or BPR) and
the pointwise BCE objective."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow_recommenders as tfrs

from tfrec._keras import keras, tf
from tfrec.core.distribute import l2_penalty, replica_count, replica_mean
from tfrec.core.ids import Ids, known
from tfrec.data.model_data import RatingStats
from tfrec.models.registry import boolean, one_of, positive
from tfrec.models.towers import zeros_table

LOSSES = ("softmax", "bpr")
# How an interaction's weight (a play count) becomes its weight in the loss.
CONFIDENCES = ("binary", "linear", "log")

# Rules of the retrieval objective's config fields, shared by the retrieval configs.
OBJECTIVE_RULES = {
    "loss": one_of(*LOSSES),
    "temperature": (positive, "a number > 0"),
    "logq_correction": (boolean, "true or false"),
}


def clip_rating(rating: tf.Tensor, ratings: RatingStats | None, training: bool) -> tf.Tensor:
    """Predictions clipped to the training ratings' range at inference."""
    if ratings is None or training:
        return rating
    return tf.clip_by_value(rating, ratings.low, ratings.high)


@keras.utils.register_keras_serializable(package="tfrec")
class RatingHead(keras.layers.Layer):
    """``rating = mu + b_u + b_i + <p_u, q_i>``, the head every rating model shares.

    Holds the global mean ``mu`` (a trainable scalar starting at the training mean), the
    user and item bias tables (row 0, unknown ids, held at zero) and the MSE task. The
    towers ``[p_u, 1, mu + b_u]`` (:meth:`query`) and ``[q_i, b_i, 1]``
    (:meth:`candidate`) make the rating a dot product, so the same index serves top-K.

    Args:
        num_users: Known users (the bias table has one more row, for unknown ids).
        num_items: Known items.
        ratings: The training ratings' statistics (mean and clipping range).
    """

    def __init__(self, num_users: int, num_items: int, ratings: RatingStats | dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.ratings = ratings if isinstance(ratings, RatingStats) else RatingStats(**ratings)
        self.user_bias = zeros_table(self.num_users + 1, "user_bias")
        self.item_bias = zeros_table(self.num_items + 1, "item_bias")
        self.mu = self.add_weight(
            name="global_mean", shape=(), initializer=keras.initializers.Constant(self.ratings.mean)
        )
        self.mse = tfrs.tasks.Ranking(
            loss=keras.losses.MeanSquaredError(reduction=keras.losses.Reduction.NONE),
            metrics=[keras.metrics.RootMeanSquaredError("rmse")],
        )

    def user_part(self, index: tf.Tensor) -> tf.Tensor:
        """``b_u`` ``[B, 1]`` (zero for unknown users)."""
        return self.user_bias(index) * known(index)[:, None]

    def item_part(self, index: tf.Tensor) -> tf.Tensor:
        """``b_i`` ``[B, 1]`` (zero for unknown items)."""
        return self.item_bias(index) * known(index)[:, None]

    def query(self, factors: tf.Tensor, user_bias: tf.Tensor) -> tf.Tensor:
        """``[p_u, 1, mu + b_u]``."""
        return tf.concat([factors, tf.ones_like(user_bias), user_bias + self.mu], axis=1)

    def candidate(self, factors: tf.Tensor, item_bias: tf.Tensor) -> tf.Tensor:
        """``[q_i, b_i, 1]``."""
        return tf.concat([factors, item_bias, tf.ones_like(item_bias)], axis=1)

    def rating(self, p: tf.Tensor, user_bias: tf.Tensor, q: tf.Tensor, item_bias: tf.Tensor) -> tf.Tensor:
        """``mu + b_u + b_i + <p, q>`` for aligned rows ``[B]``."""
        return self.mu + user_bias[:, 0] + item_bias[:, 0] + tf.reduce_sum(p * q, axis=1)

    def predict(self, rating: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The rating clipped to the training range at inference."""
        return clip_rating(rating, self.ratings, training)

    def loss(self, labels: tf.Tensor, rating: tf.Tensor) -> tf.Tensor:
        """Mean squared error over the global batch (tf.distribute-safe); updates ``rmse``."""
        return replica_mean(self.mse(labels=labels[:, None], predictions=rating[:, None]))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_users": self.num_users,
            "num_items": self.num_items,
            "ratings": vars(self.ratings).copy(),
        }


@keras.utils.register_keras_serializable(package="tfrec")
class RetrievalObjective(keras.layers.Layer):
    """In-batch softmax (with log-Q correction) or BPR over query and candidate embeddings.

    ``softmax`` is TFRS's ``Retrieval`` task: every other positive in the batch is a
    negative; the log-Q correction subtracts ``log P(item in batch)``, estimated from the
    training frequency, so popular items are not over-penalised (Yi et al., RecSys 2019).
    ``extra_negatives`` uniformly drawn items join every batch's candidates (the
    correction then uses the mixed sampling probability) and ``num_hard_negatives`` keeps
    only the highest-scoring negatives per query. ``bpr`` draws one uniform negative per
    positive and minimises ``-log sigmoid(s_pos - s_neg)`` (Rendle et al., UAI 2009).
    An L2 penalty ``l2`` applies to the batch's query and candidate embeddings. With
    ``confidence`` ``linear`` or ``log`` each positive counts in proportion to its
    interaction weight (``w`` or ``log(1 + w)``, e.g. play counts; Hu et al., ICDM 2008),
    rescaled to a mean of 1 in each batch so the learning rate keeps its meaning.

    Args:
        item_counts: Training interactions per known item (vocabulary order).
        loss: ``softmax`` or ``bpr``.
        temperature: Softmax temperature.
        logq_correction: Apply the log-Q correction.
        l2: L2 weight on the batch's embeddings.
        num_hard_negatives: Hardest negatives kept per query (0: all).
        extra_negatives: Uniform negatives added to every batch.
        confidence: ``binary`` (every positive counts once), ``linear`` or ``log``.
    """

    def __init__(
        self,
        item_counts: Sequence[int],
        loss: str = "softmax",
        temperature: float = 1.0,
        logq_correction: bool = True,
        l2: float = 0.0,
        num_hard_negatives: int = 0,
        extra_negatives: int = 0,
        confidence: str = "binary",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if confidence not in CONFIDENCES:
            raise ValueError(f"confidence must be one of {CONFIDENCES}, got {confidence!r}")
        self.confidence = confidence
        self.item_counts = Ids(int(c) for c in item_counts)
        counts = np.asarray(list(self.item_counts), dtype=np.float64)
        self.num_items = len(counts)
        # Index 0 is the OOV bucket: give it the smallest frequency.
        probability = np.concatenate([[counts.min(initial=1.0)], counts]) / max(counts.sum(), 1.0)
        self.item_probability = tf.constant(probability.astype(np.float32))
        self.loss_name, self.temperature, self.logq = loss, float(temperature), bool(logq_correction)
        self.l2, self.num_hard_negatives = float(l2), int(num_hard_negatives)
        self.extra_negatives = int(extra_negatives)
        self.retrieval = tfrs.tasks.Retrieval(
            temperature=self.temperature,
            num_hard_negatives=self.num_hard_negatives or None,
            remove_accidental_hits=True,
            name="retrieval",
        )

    def uniform_items(self, shape) -> tf.Tensor:
        """Indices of uniformly drawn known items (never the OOV row)."""
        return tf.random.uniform(shape, 1, self.num_items + 1, dtype=tf.int64)

    def loss(
        self,
        queries: tf.Tensor,
        candidates: tf.Tensor,
        item_index: tf.Tensor,
        embed_items: Callable[[tf.Tensor], tf.Tensor],
        weights: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """The batch's loss (this replica's share of the global-batch mean) plus the L2 penalty.

        Args:
            queries: ``[B, d]`` query embeddings.
            candidates: ``[B, d]`` embeddings of the positive items.
            item_index: ``[B]`` the positives' item indices.
            embed_items: Candidate embeddings of item indices (for drawn negatives).
            weights: ``[B]`` the positives' raw interaction weights (used unless
                ``confidence`` is ``binary``), or None.
        """
        penalty = l2_penalty(self.l2, queries, candidates)
        sample_weight = self.sample_weights(weights)
        if self.loss_name == "bpr":
            negatives = embed_items(self.uniform_items(tf.shape(item_index)))
            margin = tf.reduce_sum(queries * (candidates - negatives), axis=1)
            per_example = tf.math.log_sigmoid(margin)
            if sample_weight is not None:
                per_example = per_example * sample_weight
            return -replica_mean(per_example) + penalty
        candidate_ids = item_index
        if self.extra_negatives:
            extra = self.uniform_items([self.extra_negatives])
            candidates = tf.concat([candidates, embed_items(extra)], 0)
            candidate_ids = tf.concat([item_index, extra], 0)
        probability = None
        if self.logq:
            # Expected share of the candidate slots each item gets: in-batch positives
            # follow the training frequency, the extra negatives are uniform.
            batch = tf.cast(tf.shape(item_index)[0], tf.float32)
            probability = (batch * tf.gather(self.item_probability, candidate_ids)
                           + self.extra_negatives / self.num_items) / (batch + self.extra_negatives)  # fmt: skip
        loss = self.retrieval(
            queries,
            candidates,
            candidate_sampling_probability=probability,
            candidate_ids=candidate_ids,
            sample_weight=sample_weight,
            compute_metrics=False,
            compute_batch_metrics=False,
        )
        # TFRS sums over the batch; the mean keeps the learning rate independent of it.
        return loss / tf.cast(tf.shape(queries)[0] * replica_count(), tf.float32) + penalty

    def sample_weights(self, weights: tf.Tensor | None) -> tf.Tensor | None:
        """``[B]`` loss weights of the positives from their raw weights, mean 1 in the batch
        (None: every positive counts once)."""
        if self.confidence == "binary" or weights is None:
            return None
        weights = tf.maximum(tf.cast(weights, tf.float32), 0.0)
        if self.confidence == "log":
            weights = tf.math.log1p(weights)
        return weights / tf.maximum(tf.reduce_mean(weights), 1e-12)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "item_counts": list(self.item_counts),
            "loss": self.loss_name,
            "temperature": self.temperature,
            "logq_correction": self.logq,
            "l2": self.l2,
            "num_hard_negatives": self.num_hard_negatives,
            "extra_negatives": self.extra_negatives,
            "confidence": self.confidence,
        }


@keras.utils.register_keras_serializable(package="tfrec")
class PointwiseObjective(keras.layers.Layer):
    """Binary cross-entropy on logits of labelled (user, item) pairs, plus an L2 penalty
    on the batch's embeddings (the NCF objective)."""

    def __init__(self, l2: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.l2 = float(l2)
        self.bce = tfrs.tasks.Ranking(
            loss=keras.losses.BinaryCrossentropy(from_logits=True, reduction=keras.losses.Reduction.NONE)
        )

    def loss(self, labels: tf.Tensor, logits: tf.Tensor, *embeddings: tf.Tensor) -> tf.Tensor:
        """This replica's share of the global-batch mean BCE, plus ``l2`` on ``embeddings``."""
        per_example = self.bce(labels=labels[:, None], predictions=logits[:, None])
        return replica_mean(per_example) + l2_penalty(self.l2, *embeddings)

    def get_config(self) -> dict:
        return {**super().get_config(), "l2": self.l2}
