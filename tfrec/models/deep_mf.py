"""Deep matrix factorization: latent factors passed through non-linear towers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow_recommenders as tfrs

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import to_dataset
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError
from tfrec.models.base import Ids, known, replica_mean
from tfrec.models.registry import TRAINING_RULES, check, non_negative, one_of, positive_int, register
from tfrec.models.retrieval import OBJECTIVE_RULES, RetrievalObjective
from tfrec.models.towers import IdTower

FEEDBACK = ("explicit", "implicit")


@dataclass(frozen=True)
class DeepMFConfig:
    """Hyperparameters of :class:`DeepMF` and its default training recipe.

    Attributes:
        feedback: ``explicit`` (regress ratings) or ``implicit`` (retrieval).
        embedding_dim: Width of the id embeddings.
        hidden_units: Tower layer widths; the last is the factor dimension.
        activation: Activation of the hidden layers.
        dropout: Dropout between tower layers.
        l2: L2 weight on the batch's tower outputs (and biases, explicit).
        loss: Implicit objective: ``softmax`` or ``bpr``.
        temperature: Softmax temperature (implicit).
        logq_correction: Log-Q correction of in-batch logits (implicit).
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Examples per batch.
    """

    feedback: str = "explicit"
    embedding_dim: int = 64
    hidden_units: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    dropout: float = 0.0
    l2: float = 0.05
    loss: str = "softmax"
    temperature: float = 0.2
    logq_correction: bool = True
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 512

    def __post_init__(self) -> None:
        check(
            self,
            {
                "feedback": one_of(*FEEDBACK),
                "embedding_dim": (positive_int, "a positive integer"),
                "hidden_units": (lambda v: all(positive_int(u) for u in v), "positive integers"),
                "activation": one_of("relu", "gelu", "tanh", "selu", "swish"),
                "dropout": (lambda v: non_negative(v) and v < 1, "a number in [0, 1)"),
                "l2": (non_negative, "a number >= 0"),
                **OBJECTIVE_RULES,
                **TRAINING_RULES,
            },
        )


@register(
    "deep_mf",
    config=DeepMFConfig,
    task="rating",
    description="Deep MF: id embeddings through non-linear towers; ratings (explicit) or retrieval (implicit)",
    paper="Xue et al., Deep Matrix Factorization Models for Recommender Systems, IJCAI 2017",
)
@keras.utils.register_keras_serializable(package="tfrec")
class DeepMF(RetrievalObjective):
    """User and item factors computed by MLP towers over id embeddings.

    Explicit feedback: ``rating = mu + b_u + b_i + <f(e_u), g(e_i)>``, trained with MSE.
    Implicit feedback: ``score = <f(e_u), g(e_i)>``, trained like ``implicit_mf``. Either
    way the score is a dot product of the towers' outputs, so top-K retrieval and
    serving use the same index as the other factorization models.

    Args:
        user_vocabulary: Known user ids.
        item_vocabulary: Known item ids.
        item_counts: Training interactions per item (for the log-Q correction).
        feedback: ``explicit`` or ``implicit``.
        embedding_dim, hidden_units, activation, dropout, l2, loss, temperature,
        logq_correction: As in :class:`DeepMFConfig`.
        global_mean: Initial global mean rating (explicit).
        rating_range: ``(low, high)`` to clip predicted ratings to at inference.

    Example:
        >>> model = tfrec.models.build("deep_mf", split.train, hidden_units=(128, 64))
    """

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        item_vocabulary: Sequence[str],
        item_counts: Sequence[int],
        feedback: str = "explicit",
        embedding_dim: int = 64,
        hidden_units: Sequence[int] = (128, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.05,
        loss: str = "softmax",
        temperature: float = 0.2,
        logq_correction: bool = True,
        global_mean: float = 0.0,
        rating_range: Sequence[float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.item_vocabulary = Ids(item_vocabulary)
        self.item_counts = Ids(int(c) for c in item_counts)
        self.feedback = feedback
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation = activation
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.loss_name = loss
        self.temperature = float(temperature)
        self.logq_correction = bool(logq_correction)
        self.global_mean = float(global_mean)
        self.rating_range = None if rating_range is None else [float(r) for r in rating_range]
        self.task = "rating" if feedback == "explicit" else "retrieval"

        # === Layers ===
        tower = dict(embedding_dim=self.embedding_dim, hidden_units=self.hidden_units,
                     activation=activation, dropout=self.dropout)  # fmt: skip
        self.query_tower = IdTower(self.user_vocabulary, name="query_tower", **tower)
        self.candidate_tower = IdTower(self.item_vocabulary, name="candidate_tower", **tower)
        self.user_bias = keras.layers.Embedding(
            len(self.user_vocabulary) + 1, 1, embeddings_initializer="zeros", name="user_bias"
        )
        self.item_bias = keras.layers.Embedding(
            len(self.item_vocabulary) + 1, 1, embeddings_initializer="zeros", name="item_bias"
        )
        self.user_bias.build((None,))
        self.item_bias.build((None,))
        self.mu = self.add_weight(
            name="global_mean", shape=(), initializer=keras.initializers.Constant(self.global_mean)
        )
        self.ranking = tfrs.tasks.Ranking(
            loss=keras.losses.MeanSquaredError(reduction=keras.losses.Reduction.NONE)
        )
        self._setup_objective(self.item_counts, loss, self.temperature, self.logq_correction, self.l2)

    # === Towers ===
    def _parts(self, index: tf.Tensor, tower: IdTower, bias: keras.layers.Embedding, training: bool = False):
        return tower.from_index(index, training=training), bias(index) * known(index)[:, None]

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Explicit: ``[f(e_u), 1, mu + b_u]``; implicit: ``f(e_u)``."""
        factors, bias = self._parts(index, self.query_tower, self.user_bias, training)
        if self.feedback == "implicit":
            return factors
        return tf.concat([factors, tf.ones_like(bias), bias + self.mu], axis=1)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Explicit: ``[g(e_i), b_i, 1]``; implicit: ``g(e_i)``."""
        factors, bias = self._parts(index, self.candidate_tower, self.item_bias, training)
        if self.feedback == "implicit":
            return factors
        return tf.concat([factors, bias, tf.ones_like(bias)], axis=1)

    # === Forward ===
    def _rating(self, features, training: bool):
        p, b_u = self._parts(self.user_index(features["user_id"]), self.query_tower, self.user_bias, training)
        q, b_i = self._parts(
            self.item_index(features["item_id"]), self.candidate_tower, self.item_bias, training
        )
        rating = self.mu + b_u[:, 0] + b_i[:, 0] + tf.reduce_sum(p * q, axis=1)
        penalty = self.l2 * replica_mean(
            tf.reduce_sum(p * p + q * q, axis=1) + tf.square(b_u[:, 0]) + tf.square(b_i[:, 0])
        )
        return rating, penalty

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        if self.feedback == "implicit":
            return super().call(inputs, training=training)
        rating, _ = self._rating(inputs, training)
        if self.rating_range is not None and not training:
            rating = tf.clip_by_value(rating, *self.rating_range)
        return rating

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        if self.feedback == "implicit":
            return super().compute_loss(inputs, training=training)
        features, labels = inputs
        rating, penalty = self._rating(features, training)
        # Per-example losses averaged over the global batch (tf.distribute-safe).
        per_example = self.ranking(labels=labels[:, None], predictions=rating[:, None])
        return replica_mean(per_example) + penalty

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: DeepMFConfig) -> DeepMF:
        """Builds the model for a training split (vocabularies, counts, rating stats from it)."""
        vocabulary = Vocabulary.from_interactions(train)
        stats = {}
        if config.feedback == "explicit":
            if not train.has_ratings:
                raise DataError(f"deep_mf with feedback='explicit' needs ratings; {train.name} has none")
            ratings = train.frame["rating"]
            stats = {
                "global_mean": float(ratings.mean()),
                "rating_range": (float(ratings.min()), float(ratings.max())),
            }
        return cls(
            vocabulary.users, vocabulary.items, vocabulary.item_counts,
            feedback=config.feedback, embedding_dim=config.embedding_dim, hidden_units=config.hidden_units,
            activation=config.activation, dropout=config.dropout, l2=config.l2, loss=config.loss,
            temperature=config.temperature, logq_correction=config.logq_correction, **stats,
        )  # fmt: skip

    @staticmethod
    def training_data(train: Interactions, config: DeepMFConfig, seed: int = 0) -> tf.data.Dataset:
        """``(features, rating)`` batches (explicit) or positive pairs (implicit)."""
        label = "rating" if config.feedback == "explicit" else None
        return to_dataset(train, label=label, batch_size=config.batch_size, seed=seed)

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            "item_vocabulary": list(self.item_vocabulary),
            "item_counts": list(self.item_counts),
            "feedback": self.feedback,
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "activation": self.activation,
            "dropout": self.dropout,
            "l2": self.l2,
            "loss": self.loss_name,
            "temperature": self.temperature,
            "logq_correction": self.logq_correction,
            "global_mean": self.global_mean,
            "rating_range": self.rating_range,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> DeepMF:
        return cls(**config)
