"""Content retrieval: a user tower against an item tower built from item text (and,
for the hybrid, an item-id embedding with id dropout)."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.model_data import ModelData
from tfrec.models.capabilities import TextCandidates
from tfrec.models.content import (
    TEXT_RULES,
    content_data,
    distinct_tokens,
    user_and_catalogue,
)
from tfrec.models.heads import OBJECTIVE_RULES
from tfrec.models.registry import TRAINING_RULES, boolean, check, non_negative, positive_int, register
from tfrec.models.retrieval import RetrievalModel, retrieval_objective
from tfrec.models.towers import id_dropout_mask, normal_table


@dataclass(frozen=True)
class ContentTowerConfig:
    """Hyperparameters of :class:`ContentTower` and its training recipe (defaults: bench/TUNING.md).

    Attributes:
        embedding_dim: Width of the user embedding and of the text encoding.
        encoder: Text encoder: ``mean``, ``cnn`` or ``transformer``.
        sequence_length: Tokens kept per item text.
        max_tokens: Vectorizer vocabulary size (adapted on training items' text).
        text_dropout: Dropout on the text encoding during training.
        l2: L2 weight on the batch's tower outputs.
        loss, temperature, logq_correction: The retrieval objective (see ``implicit_mf``).
        extra_negatives: Uniformly drawn training items added to each batch's candidates.
        user_profile: Add the user's history to the user tower: the text encoding of the
            words that best describe the user's training items (tf-idf over their texts).
        item_ids: Add a trained item-id embedding to the text encoding (the hybrid).
        id_dropout: With ``item_ids``, the share of training examples whose id embedding
            is dropped, so the text alone must carry them (what cold items rely on).
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Positives per batch.
    """

    embedding_dim: int = 128
    encoder: str = "mean"
    sequence_length: int = 128
    max_tokens: int = 20_000
    text_dropout: float = 0.0
    l2: float = 0.0
    loss: str = "softmax"
    temperature: float = 0.2
    logq_correction: bool = True
    extra_negatives: int = 0
    user_profile: bool = False
    item_ids: bool = False
    id_dropout: float = 0.0
    learning_rate: float = 5e-3
    epochs: int = 5
    batch_size: int = 256

    def __post_init__(self) -> None:
        check(self, self.rules())

    def rules(self) -> dict:
        return {
            "embedding_dim": (positive_int, "a positive integer"),
            "l2": (non_negative, "a number >= 0"),
            "extra_negatives": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
            "user_profile": (boolean, "true or false"),
            "item_ids": (boolean, "true or false"),
            "id_dropout": (lambda v: non_negative(v) and v < 1, "a number in [0, 1)"),
            **TEXT_RULES,
            **OBJECTIVE_RULES,
            **TRAINING_RULES,
        }


@register(
    "content_tower",
    config=ContentTowerConfig,
    task="retrieval",
    description="Content retrieval: user id (+ history profile) tower x item text tower; cold items by text",
    paper="Van den Oord et al., Deep content-based music recommendation, NeurIPS 2013; Yi et al. 2019",
)
class ContentTower(TextCandidates, RetrievalModel):
    """``score(user, item) = <e_u, text_encoder(text_i)>``: items are what their text says.

    The item tower sees the item's text (:class:`CatalogueText`), so an item nobody has
    interacted with (a cold item in the side table, or any text through the serving
    signatures) is scored exactly like a known one. The item's score offset is a linear
    function of its encoding plus a learned weight per distinct word of its text (the
    mean-pooled encoding cannot see how much a text says). With ``item_ids`` (the
    hybrid's default) a trained item's id embedding is added to its encoding, dropped at
    random in training (``id_dropout``); with ``user_profile`` the user tower adds the
    text encoding of the user's profile (``ModelData.user_profiles``).

    Example:
        >>> model = tfrec.models.build("content_tower", split.train, encoder="cnn")
        >>> tfrec.evaluate(model, split.train, split.test, protocol="cold-start")
    """

    def __init__(self, config: ContentTowerConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        self.query_tower, self.content = user_and_catalogue(self.data, c)
        self.item_embedding = (
            normal_table(self.content.num_trained + 1, c.embedding_dim, "item_embedding") if c.item_ids else None
        )
        self.text_bias = keras.layers.Dense(1, name="text_bias")
        self.text_bias.build((None, c.embedding_dim))
        profiles = self.data.user_profiles
        self.profile_tokens = None
        if profiles:  # profile token ids per user index (row 0, unknown users: empty)
            tokens = self.content.text_encoder.tokenize(tf.constant(["", *profiles], dtype=tf.string)).numpy()
            # A variable (int32), not a graph constant: the profiles are data, not graph.
            self.profile_tokens = self.add_weight(
                name="profile_tokens", shape=tokens.shape, dtype=tf.int32, trainable=False,
                initializer=keras.initializers.Constant(tokens.astype("int32")),
            )  # fmt: skip
        vocabulary = len(self.content.text_encoder.vocabulary)
        self.word_bias = normal_table(vocabulary + 2, 1, "word_bias", stddev=0.0)
        self.objective = retrieval_objective(c, self.data.item_counts, extra_negatives=c.extra_negatives)

    @classmethod
    def prepare(cls, train: Interactions, config: ContentTowerConfig) -> ModelData:
        """Vocabularies, counts, the catalogue and (``user_profile``) the users' profiles."""
        return content_data(cls, train, config, profiles=config.user_profile)

    # === Towers ===
    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.content.lookup(item_ids)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[e_u (+ profile encoding), 1]``: the user and the constant the item's bias multiplies."""
        factors = self.query_tower.from_index(index, training=training)
        if self.profile_tokens is not None:
            tokens = tf.cast(tf.gather(self.profile_tokens, index), tf.int64)
            factors = factors + self.content.text_encoder.encode(tokens, training=training)
        return tf.concat([factors, tf.ones_like(factors[:, :1])], axis=1)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[text encoding (+ id embedding), text bias]``."""
        tokens = self.content.tokens_of(index)
        encoding = self.content.text_encoder.encode(tokens, training=training)
        factors = encoding
        if self.item_embedding is not None:
            trained = self.content.trained_index(index)
            keep = id_dropout_mask(trained, self.config.id_dropout, training)
            factors = encoding + self.item_embedding(trained) * keep
        return tf.concat([factors, self._bias(tokens, encoding)], axis=1)

    def candidate_from_text(self, texts: tf.Tensor) -> tf.Tensor:
        """The candidate embedding of items given only by their text (cold start)."""
        tokens = self.content.text_encoder.tokenize(texts)
        encoding = self.content.text_encoder.encode(tokens)
        return tf.concat([encoding, self._bias(tokens, encoding)], axis=1)

    def example_texts(self, count: int) -> list[str]:
        return self.content.example_texts(count)

    def _bias(self, tokens: tf.Tensor, encoding: tf.Tensor) -> tf.Tensor:
        """The item's score offset: from its encoding plus its distinct words' weights ``[B, 1]``."""
        words, mask = distinct_tokens(tokens)
        return self.text_bias(encoding) + tf.reduce_sum(self.word_bias(words)[..., 0] * mask, axis=1, keepdims=True)

    def export_config(self) -> dict:
        return {**super().export_config(), "catalogue_size": len(self.data.catalogue.item_ids)}
