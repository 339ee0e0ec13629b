"""Content rating regression: user factors against item factors computed from text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow_recommenders as tfrs

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import to_dataset
from tfrec.errors import DataError
from tfrec.models.base import FactorizedMixin, Ids, known, replica_mean
from tfrec.models.content import TEXT_RULES, ContentMixin, content_arguments, embedding
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive_int, register
from tfrec.models.towers import IdTower


@dataclass(frozen=True)
class ContentRatingConfig:
    """Hyperparameters of :class:`ContentRating` and its default training recipe.

    Attributes:
        embedding_dim: Latent factors (user embedding, text encoding).
        encoder, sequence_length, max_tokens, text_dropout: The text encoder.
        l2: L2 weight on the batch's factors and biases.
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Ratings per batch.
    """

    embedding_dim: int = 32
    encoder: str = "mean"
    sequence_length: int = 64
    max_tokens: int = 20_000
    text_dropout: float = 0.0
    l2: float = 0.05
    learning_rate: float = 2e-3
    epochs: int = 10
    batch_size: int = 256

    def __post_init__(self) -> None:
        check(
            self,
            {
                "embedding_dim": (positive_int, "a positive integer"),
                "l2": (non_negative, "a number >= 0"),
                **TEXT_RULES,
                **TRAINING_RULES,
            },
        )


@register(
    "content_rating",
    config=ContentRatingConfig,
    task="rating",
    description="Content rating: mu + b_u + b(text) + <p_u, q(text)> (+ id bias for trained items), MSE",
    paper="Van den Oord et al. 2013 (content factors); Koren, Bell & Volinsky 2009 (biased MF)",
)
@keras.utils.register_keras_serializable(package="tfrec")
class ContentRating(ContentMixin, FactorizedMixin, tfrs.Model):
    """Explicit ratings from item text: the item's factors and bias come from its text.

    ``rating = mu + b_u + b_i + <p_u, q_i>`` with ``q_i`` the text encoding and ``b_i`` a
    linear function of it plus a learned bias for items seen in training (zero for cold
    items). As in ``biased_mf``, the towers ``[p_u, 1, mu + b_u]`` and ``[q_i, b_i, 1]``
    make the rating a dot product, so recommendation and serving share the index path.

    Example:
        >>> model = tfrec.models.build("content_rating", split.train)
    """

    task = "rating"

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        catalogue_ids: Sequence[str],
        catalogue_texts: Sequence[str],
        num_trained: int,
        text_vocabulary: Sequence[str],
        embedding_dim: int = 32,
        encoder: str = "mean",
        sequence_length: int = 64,
        text_dropout: float = 0.0,
        l2: float = 0.05,
        global_mean: float = 0.0,
        rating_range: Sequence[float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.embedding_dim = int(embedding_dim)
        self.encoder = encoder
        self.sequence_length = int(sequence_length)
        self.text_dropout = float(text_dropout)
        self.l2 = float(l2)
        self.global_mean = float(global_mean)
        self.rating_range = None if rating_range is None else [float(r) for r in rating_range]
        # === Layers ===
        self.query_tower = IdTower(
            self.user_vocabulary, self.embedding_dim, init_stddev=0.05, name="query_tower"
        )
        self._setup_content(
            catalogue_ids, catalogue_texts, num_trained, text_vocabulary, self.embedding_dim,
            encoder, self.sequence_length, self.text_dropout,
        )  # fmt: skip
        self.user_bias = embedding(len(self.user_vocabulary) + 1, 1, "user_bias", stddev=0.0)
        self.item_bias = embedding(self.num_trained + 1, 1, "item_bias", stddev=0.0)
        self.text_bias = keras.layers.Dense(1, name="text_bias")
        self.text_bias.build((None, self.embedding_dim))
        self.mu = self.add_weight(
            name="global_mean", shape=(), initializer=keras.initializers.Constant(self.global_mean)
        )
        self.ranking = tfrs.tasks.Ranking(
            loss=keras.losses.MeanSquaredError(reduction=keras.losses.Reduction.NONE)
        )

    # === Towers ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.query_tower.lookup(user_ids)

    def _user_parts(self, index: tf.Tensor, training: bool = False):
        return self.query_tower.from_index(index, training=training), self.user_bias(index) * known(index)[
            :, None
        ]

    def _item_parts(self, index: tf.Tensor, training: bool = False):
        encoding = self.text_from_index(index, training=training)
        trained = self.trained_index(index)
        bias = self.text_bias(encoding) + self.item_bias(trained) * known(trained)[:, None]
        return encoding, bias

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[p_u, 1, mu + b_u]``."""
        factors, bias = self._user_parts(index, training)
        return tf.concat([factors, tf.ones_like(bias), bias + self.mu], axis=1)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[q(text), b_i, 1]``."""
        factors, bias = self._item_parts(index, training)
        return tf.concat([factors, bias, tf.ones_like(bias)], axis=1)

    def candidate_from_text(self, texts: tf.Tensor) -> tf.Tensor:
        """The candidate embedding of items given only by their text (cold start)."""
        encoding = self.text_encoder(texts)
        bias = self.text_bias(encoding)
        return tf.concat([encoding, bias, tf.ones_like(bias)], axis=1)

    # === Forward ===
    def _rating(self, features, training: bool):
        p, b_u = self._user_parts(self.user_index(features["user_id"]), training)
        q, b_i = self._item_parts(self.item_index(features["item_id"]), training)
        rating = self.mu + b_u[:, 0] + b_i[:, 0] + tf.reduce_sum(p * q, axis=1)
        penalty = self.l2 * replica_mean(tf.reduce_sum(p * p + q * q, axis=1) + tf.square(b_u[:, 0]))
        return rating, penalty

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        rating, _ = self._rating(inputs, training)
        if self.rating_range is not None and not training:
            rating = tf.clip_by_value(rating, *self.rating_range)
        return rating

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        rating, penalty = self._rating(features, training)
        # Per-example losses averaged over the global batch (tf.distribute-safe).
        per_example = self.ranking(labels=labels[:, None], predictions=rating[:, None])
        return replica_mean(per_example) + penalty

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: ContentRatingConfig) -> ContentRating:
        """Builds the model for a training split (vocabularies, catalogue, rating statistics)."""
        if not train.has_ratings:
            raise DataError(f"content_rating needs ratings; {train.name} has none")
        vocabulary, content = content_arguments(train, config)
        ratings = train.frame["rating"]
        return cls(
            vocabulary.users, embedding_dim=config.embedding_dim, l2=config.l2,
            global_mean=float(ratings.mean()), rating_range=(float(ratings.min()), float(ratings.max())),
            **content,
        )  # fmt: skip

    @staticmethod
    def training_data(train: Interactions, config: ContentRatingConfig, seed: int = 0) -> tf.data.Dataset:
        """``(features, rating)`` batches, reshuffled each epoch."""
        return to_dataset(train, label="rating", batch_size=config.batch_size, seed=seed)

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            **self.content_config(),
            "embedding_dim": self.embedding_dim,
            "encoder": self.encoder,
            "sequence_length": self.sequence_length,
            "text_dropout": self.text_dropout,
            "l2": self.l2,
            "global_mean": self.global_mean,
            "rating_range": self.rating_range,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> ContentRating:
        return cls(**config)
