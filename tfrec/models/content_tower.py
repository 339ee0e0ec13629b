"""Content retrieval: a user tower against an item tower built from item text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import to_dataset
from tfrec.models.base import Ids
from tfrec.models.content import (
    TEXT_RULES,
    ContentMixin,
    content_arguments,
    distinct_tokens,
    embedding,
    id_dropout_mask,
    user_profiles,
)  # fmt: skip
from tfrec.models.registry import TRAINING_RULES, boolean, check, non_negative, positive_int, register
from tfrec.models.retrieval import OBJECTIVE_RULES, RetrievalObjective
from tfrec.models.towers import IdTower


@dataclass(frozen=True)
class ContentTowerConfig:
    """Hyperparameters of :class:`ContentTower` and its default training recipe.

    Defaults from cold-start runs (``--split cold-items:0.2 --protocol cold-start --k 20``,
    seed 0, Recall@20; the current defaults' figures are in bench/results/content_quality.md).
    Each row is ``tfrec train content_tower --dataset D --split cold-items:0.2 --protocol
    cold-start --k 20 --seed 0 --set ...`` (run as ``training.train`` + ``tfrec.evaluate``):

    ==============================================  ===============  ===========
    setting                                         ml-latest-small  CiteULike-t
    ==============================================  ===============  ===========
    no per-word bias, lr 2e-3 (the earlier model)   0.0914           0.1018
    per-word bias, lr 2e-3                          0.1311
    per-word bias, lr 5e-3 (default)                0.1444           0.1620
    ... temperature 0.5                             0.1388
    ... epochs 3 / 8                                0.1506 / 0.1304
    ... text_dropout 0.3 / 0.5                      0.1613 / 0.1536  0.1527
    ... user_profile true                           0.1421
    ==============================================  ===============  ===========

    Temperature 0.2 beat 1.0 on CiteULike-t (0.121 vs 0.097, 5 epochs, before the bias
    terms). Differences under ~0.01 are within the seed-to-seed spread of one split.

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
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Positives per batch.
    """

    embedding_dim: int = 64
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
@keras.utils.register_keras_serializable(package="tfrec")
class ContentTower(ContentMixin, RetrievalObjective):
    """``score(user, item) = <e_u, text_encoder(text_i)>``: items are what their text says.

    The item tower sees only the item's text, so an item nobody has interacted with
    (a cold item in the side table, or any text through the serving signatures) is
    scored exactly like a known one.

    Args:
        user_vocabulary: Known user ids.
        catalogue_ids: Training items (vocabulary order) then cold items with text.
        catalogue_texts: Text per catalogue id.
        num_trained: How many catalogue items were in training.
        text_vocabulary: Vectorizer vocabulary (training items' text only).
        item_counts: Training interactions per training item (log-Q correction).
        embedding_dim, encoder, sequence_length, text_dropout, l2, loss, temperature,
        logq_correction, extra_negatives: As in :class:`ContentTowerConfig`.

    Example:
        >>> model = tfrec.models.build("content_tower", split.train, encoder="cnn")
        >>> tfrec.evaluate(model, split.train, split.test, protocol="cold-start")
    """

    uses_item_ids = False

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        catalogue_ids: Sequence[str],
        catalogue_texts: Sequence[str],
        num_trained: int,
        text_vocabulary: Sequence[str],
        item_counts: Sequence[int],
        embedding_dim: int = 64,
        encoder: str = "mean",
        sequence_length: int = 128,
        text_dropout: float = 0.0,
        l2: float = 0.0,
        loss: str = "softmax",
        temperature: float = 0.2,
        logq_correction: bool = True,
        extra_negatives: int = 0,
        id_dropout: float = 0.0,
        user_profiles: Sequence[str] = (),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.item_counts = Ids(int(c) for c in item_counts)
        self.embedding_dim = int(embedding_dim)
        self.encoder = encoder
        self.sequence_length = int(sequence_length)
        self.text_dropout = float(text_dropout)
        self.l2 = float(l2)
        self.loss_name = loss
        self.temperature = float(temperature)
        self.logq_correction = bool(logq_correction)
        self.extra_negatives = int(extra_negatives)
        self.id_dropout = float(id_dropout)
        self.user_profiles = Ids(str(p) for p in user_profiles)
        if self.user_profiles and len(self.user_profiles) != len(self.user_vocabulary):
            raise ValueError(
                f"user_profiles has {len(self.user_profiles)} entries for {len(self.user_vocabulary)} users"
            )
        # === Layers ===
        self.query_tower = IdTower(
            self.user_vocabulary, self.embedding_dim, init_stddev=0.05, name="query_tower"
        )
        self._setup_content(
            catalogue_ids, catalogue_texts, num_trained, text_vocabulary, self.embedding_dim,
            encoder, self.sequence_length, self.text_dropout,
        )  # fmt: skip
        if self.uses_item_ids:
            self.item_embedding = embedding(self.num_trained + 1, self.embedding_dim, "item_embedding")
        # A per-item score offset read from the text (how widely liked such an item is),
        # paired with a constant 1 in the user tower.
        self.text_bias = keras.layers.Dense(1, name="text_bias")
        self.text_bias.build((None, self.embedding_dim))
        if self.user_profiles:  # profile token ids per user index (row 0, unknown users: empty)
            tokens = self.text_encoder.tokenize(tf.constant(["", *self.user_profiles], dtype=tf.string))
            self.profile_tokens = tf.constant(tokens.numpy())
        # Plus one learned weight per word, summed over the text's distinct words: the
        # mean-pooled encoding cannot see how much an item's text says (how many tags a
        # film has), which is what predicts how widely a cold item will be taken up.
        self.word_bias = embedding(len(self.text_encoder.vocabulary) + 2, 1, "word_bias", stddev=0.0)
        self._setup_objective(
            self.item_counts, loss, self.temperature, self.logq_correction, self.l2,
            extra_negatives=self.extra_negatives,
        )  # fmt: skip

    # === Towers ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.query_tower.lookup(user_ids)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[e_u (+ profile encoding), 1]``: the user and the constant the item's bias multiplies."""
        factors = self.query_tower.from_index(index, training=training)
        if self.user_profiles:
            profile = self.text_encoder.encode(tf.gather(self.profile_tokens, index), training=training)
            factors = factors + profile
        return tf.concat([factors, tf.ones_like(factors[:, :1])], axis=1)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[text encoding (+ id embedding for the hybrid), text bias]``."""
        tokens = tf.gather(self.catalogue_tokens, index)
        encoding = self.text_encoder.encode(tokens, training=training)
        factors = encoding
        if self.uses_item_ids:
            trained = self.trained_index(index)
            factors = encoding + self.item_embedding(trained) * id_dropout_mask(
                trained, self.id_dropout, training
            )
        return tf.concat([factors, self._bias(tokens, encoding)], axis=1)

    def candidate_from_text(self, texts: tf.Tensor) -> tf.Tensor:
        """The candidate embedding of items given only by their text (cold start)."""
        tokens = self.text_encoder.tokenize(texts)
        encoding = self.text_encoder.encode(tokens)
        return tf.concat([encoding, self._bias(tokens, encoding)], axis=1)

    def _bias(self, tokens: tf.Tensor, encoding: tf.Tensor) -> tf.Tensor:
        """The item's score offset: from its encoding plus its distinct words' weights ``[B, 1]``."""
        words, mask = distinct_tokens(tokens)
        return self.text_bias(encoding) + tf.reduce_sum(
            self.word_bias(words)[..., 0] * mask, axis=1, keepdims=True
        )

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: ContentTowerConfig) -> ContentTower:
        """Builds the model for a training split (vocabularies, catalogue and text vocabulary from it)."""
        vocabulary, content = content_arguments(train, config)
        extra = {"id_dropout": config.id_dropout} if hasattr(config, "id_dropout") else {}
        if config.user_profile:
            trained_texts = content["catalogue_texts"][: content["num_trained"]]
            extra["user_profiles"] = user_profiles(
                train, vocabulary, trained_texts, content["text_vocabulary"], config.sequence_length
            )
        return cls(
            vocabulary.users, item_counts=vocabulary.item_counts, embedding_dim=config.embedding_dim,
            l2=config.l2, loss=config.loss, temperature=config.temperature,
            logq_correction=config.logq_correction, extra_negatives=config.extra_negatives,
            **content, **extra,
        )  # fmt: skip

    @staticmethod
    def training_data(train: Interactions, config: ContentTowerConfig, seed: int = 0) -> tf.data.Dataset:
        """Batches of positive (user, item) pairs, reshuffled each epoch."""
        return to_dataset(train, batch_size=config.batch_size, seed=seed)

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            **self.content_config(),
            "item_counts": list(self.item_counts),
            "embedding_dim": self.embedding_dim,
            "encoder": self.encoder,
            "sequence_length": self.sequence_length,
            "text_dropout": self.text_dropout,
            "l2": self.l2,
            "loss": self.loss_name,
            "temperature": self.temperature,
            "logq_correction": self.logq_correction,
            "extra_negatives": self.extra_negatives,
            "id_dropout": self.id_dropout,
            "user_profiles": list(self.user_profiles),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> ContentTower:
        return cls(**config)
