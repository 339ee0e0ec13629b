"""Content rating regression: user factors against item factors computed from text."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import keras, tf
from tfrec.core.distribute import l2_penalty
from tfrec.data.interactions import Interactions
from tfrec.data.model_data import ModelData
from tfrec.models.capabilities import TextCandidates
from tfrec.models.content import TEXT_RULES, content_data, user_and_catalogue
from tfrec.models.heads import RatingHead
from tfrec.models.recommender import Recommender
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive_int, register


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

    embedding_dim: int = 64
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
class ContentRating(TextCandidates, Recommender):
    """Explicit ratings from item text: the item's factors and bias come from its text.

    ``rating = mu + b_u + b_i + <p_u, q_i>`` (a :class:`RatingHead`) with ``q_i`` the text
    encoding and ``b_i`` a linear function of it plus a learned bias for items seen in
    training (zero for cold items). The towers ``[p_u, 1, mu + b_u]`` and
    ``[q_i, b_i, 1]`` make the rating a dot product, so recommendation and serving share
    the index path.

    Example:
        >>> model = tfrec.models.build("content_rating", split.train)
    """

    def __init__(self, config: ContentRatingConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        self.query_tower, self.content = user_and_catalogue(self.data, c)
        self.head = RatingHead(len(self.data.users), self.content.num_trained, self.data.ratings, name="rating_head")
        self.text_bias = keras.layers.Dense(1, name="text_bias")
        self.text_bias.build((None, c.embedding_dim))

    @classmethod
    def prepare(cls, train: Interactions, config: ContentRatingConfig) -> ModelData:
        """Vocabularies, rating statistics and the catalogue."""
        return content_data(cls, train, config)

    # === Towers ===
    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.content.lookup(item_ids)

    def _user_parts(self, index: tf.Tensor, training: bool = False):
        return self.query_tower.from_index(index, training=training), self.head.user_part(index)

    def _item_parts(self, index: tf.Tensor, training: bool = False):
        encoding = self.content.encode(index, training=training)
        return encoding, self.text_bias(encoding) + self.head.item_part(self.content.trained_index(index))

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[p_u, 1, mu + b_u]``."""
        return self.head.query(*self._user_parts(index, training))

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[q(text), b_i, 1]``."""
        return self.head.candidate(*self._item_parts(index, training))

    def candidate_from_text(self, texts: tf.Tensor) -> tf.Tensor:
        """The candidate embedding of items given only by their text (cold start)."""
        encoding = self.content.text_encoder(texts)
        return self.head.candidate(encoding, self.text_bias(encoding))

    def example_texts(self, count: int) -> list[str]:
        return self.content.example_texts(count)

    def export_config(self) -> dict:
        return {**super().export_config(), "catalogue_size": len(self.data.catalogue.item_ids)}

    # === Forward ===
    def _rating(self, features, training: bool):
        p, b_u = self._user_parts(self.user_index(features["user_id"]), training)
        q, b_i = self._item_parts(self.item_index(features["item_id"]), training)
        return self.head.rating(p, b_u, q, b_i), l2_penalty(self.config.l2, p, q, b_u)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.head.predict(self._rating(inputs, training)[0], training)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        rating, penalty = self._rating(features, training)
        return self.head.loss(labels, rating) + penalty
