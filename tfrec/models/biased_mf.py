"""Biased matrix factorization for explicit ratings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfrec._keras import tf
from tfrec.core.distribute import replica_mean
from tfrec.core.ids import Ids, id_lookup, known
from tfrec.models.heads import RatingHead
from tfrec.models.recommender import Recommender
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive, positive_int, register
from tfrec.models.towers import normal_table


@dataclass(frozen=True)
class BiasedMFConfig:
    """Hyperparameters of :class:`BiasedMF` and its training recipe (defaults: bench/TUNING.md).

    Attributes:
        embedding_dim: Latent factors per user and item.
        l2_factors: L2 weight on the batch's factors, count-weighted (``penalty_power``).
        l2_bias: L2 weight on the batch's user and item biases.
        penalty_power: A row's factor penalty over an epoch grows as ``count ** penalty_power``
            (1: the SGD-MF form, 0: whole-table L2).
        init_stddev: Standard deviation of the factors' normal initialisation.
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Examples per batch.
    """

    embedding_dim: int = 64
    l2_factors: float = 0.11
    l2_bias: float = 0.0
    penalty_power: float = 0.5
    init_stddev: float = 0.01
    learning_rate: float = 1e-3
    epochs: int = 30
    batch_size: int = 256

    def __post_init__(self) -> None:
        check(
            self,
            {
                "embedding_dim": (positive_int, "a positive integer"),
                "l2_factors": (non_negative, "a number >= 0"),
                "l2_bias": (non_negative, "a number >= 0"),
                "penalty_power": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
                "init_stddev": (positive, "a number > 0"),
                **TRAINING_RULES,
            },
        )


def penalty_weights(counts: Ids, rows: int, power: float) -> tf.Tensor:
    """Per-example penalty weight of each table row, ``count ** (power - 1)`` with mean 1
    over the training examples, so a row's total over an epoch grows as ``count ** power``.
    Row 0 (unknown ids) weighs 1, and every row does without counts."""
    if not counts:
        return tf.ones([rows + 1])
    count = np.maximum(np.asarray(list(counts), np.float64), 1.0)
    weight = count ** (power - 1.0)
    weight /= (count * weight).sum() / max(count.sum(), 1.0)
    return tf.constant(np.concatenate([[1.0], weight]), tf.float32)


@register(
    "biased_mf",
    config=BiasedMFConfig,
    task="rating",
    description="Biased matrix factorization: global mean + user/item bias + factor dot product",
    paper="Koren, Bell & Volinsky, Matrix Factorization Techniques for Recommender Systems, 2009",
)
class BiasedMF(Recommender):
    """Rating = global mean + user bias + item bias + <user factors, item factors>.

    The :class:`RatingHead` towers ``[p_u, 1, mu + b_u]`` and ``[q_i, b_i, 1]`` make the
    score an exact dot product, so the same index serves top-K. Unknown ids fall into the
    OOV row, held at zero: a new user's prediction is ``mu + b_i``. The factors' L2
    penalty is count-weighted (:func:`penalty_weights`).

    Example:
        >>> model = tfrec.models.BiasedMF.from_data(split.train, tfrec.models.BiasedMFConfig())
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        >>> model.fit(tfrec.data.to_dataset(split.train, label="rating"), epochs=5)
    """

    @classmethod
    def stream_fields(cls, config) -> tuple[str, ...]:
        """Streams from files: ids (and, for rating models, the rating) are all it trains on."""
        return ()

    def __init__(self, config: BiasedMFConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c, n_users, n_items = self.config, len(self.data.users), len(self.data.items)
        self.user_lookup = id_lookup(self.data.users, "user_lookup")
        self.item_lookup = id_lookup(self.data.items, "item_lookup")
        self.user_factors = normal_table(n_users + 1, c.embedding_dim, "user_factors", c.init_stddev)
        self.item_factors = normal_table(n_items + 1, c.embedding_dim, "item_factors", c.init_stddev)
        self.head = RatingHead(n_users, n_items, self.data.ratings, name="rating_head")
        self.user_weight = penalty_weights(self.data.user_counts, n_users, c.penalty_power)
        self.item_weight = penalty_weights(self.data.item_counts, n_items, c.penalty_power)

    # === Towers ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.user_lookup(user_ids)

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_lookup(item_ids)

    def _user_parts(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.user_factors(index) * known(index)[:, None], self.head.user_part(index)

    def _item_parts(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.item_factors(index) * known(index)[:, None], self.head.item_part(index)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[p_u, 1, mu + b_u]`` per user."""
        return self.head.query(*self._user_parts(index))

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[q_i, b_i, 1]`` per item."""
        return self.head.candidate(*self._item_parts(index))

    def catalogue_parts(self) -> list[tf.Tensor]:
        """The item factors, the item biases and the constant 1."""
        return [self.item_factors.embeddings, self.head.item_bias.embeddings, tf.ones([1, 1])]

    # === Forward ===
    def rating_and_penalty(self, features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """The predicted rating and the batch rows' count-weighted L2 penalty."""
        users, items = self.user_lookup(features["user_id"]), self.item_lookup(features["item_id"])
        p, b_u = self._user_parts(users)
        q, b_i = self._item_parts(items)
        norms = tf.gather(self.user_weight, users) * tf.reduce_sum(p * p, axis=1)
        norms += tf.gather(self.item_weight, items) * tf.reduce_sum(q * q, axis=1)
        l2 = self.config.l2_factors * replica_mean(norms)
        l2 += self.config.l2_bias * replica_mean(tf.square(b_u[:, 0]) + tf.square(b_i[:, 0]))
        return self.head.rating(p, b_u, q, b_i), l2

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        # Inference needs no weight gathers (nor their tables in the exported graph).
        p, b_u = self._user_parts(self.user_lookup(inputs["user_id"]))
        q, b_i = self._item_parts(self.item_lookup(inputs["item_id"]))
        return self.head.predict(self.head.rating(p, b_u, q, b_i), training)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        rating, penalty = self.rating_and_penalty(features)
        return self.head.loss(labels, rating) + penalty
