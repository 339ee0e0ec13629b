"""Sequence-aware retrieval: a user is the order of their recent items (SASRec, GRU4Rec)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.core.ids import id_lookup
from tfrec.data.interactions import Interactions
from tfrec.data.model_data import ModelData
from tfrec.data.sequences import right_aligned, training_windows, window_dataset
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.capabilities import HistoryQueries
from tfrec.models.recommender import Recommender
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive, positive_int, register

SEQUENCE_RULES = {
    "embedding_dim": (positive_int, "a positive integer"),
    "max_length": (positive_int, "a positive integer"),
    "dropout": (lambda v: isinstance(v, (int, float)) and 0.0 <= v < 1.0, "a number in [0, 1)"),
    "l2": (non_negative, "a number >= 0"),
    "init_stddev": (positive, "a number > 0"),
    "sampled_negatives": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    **TRAINING_RULES,
}


@dataclass(frozen=True)
class SequenceConfig:
    """Hyperparameters every sequence model has, and its training recipe.

    Attributes:
        embedding_dim: Width of the item embeddings (shared by the input and the output
            layer) and of the encoder.
        max_length: The most recent items of a user the model reads.
        dropout: Dropout on the embeddings and inside the encoder.
        l2: L2 weight on the item embeddings a batch reads.
        init_stddev: Standard deviation of the item embeddings' initialisation.
        sampled_negatives: 0: each step's softmax runs over the whole catalogue. Above
            0: over its next item and this many items drawn per batch in proportion to
            their training counts, with the log-Q correction (for large catalogues).
        learning_rate: Adam learning rate.
        epochs: Passes over the training windows.
        batch_size: Windows (of ``max_length`` steps) per batch.
    """

    embedding_dim: int = 64
    max_length: int = 50
    dropout: float = 0.2
    l2: float = 0.0
    init_stddev: float = 0.05
    sampled_negatives: int = 0
    learning_rate: float = 2e-3
    epochs: int = 40
    batch_size: int = 128

    def __post_init__(self) -> None:
        check(self, SEQUENCE_RULES)


@dataclass(frozen=True)
class SASRecConfig(SequenceConfig):
    """Hyperparameters of :class:`SASRec`: those of :class:`SequenceConfig`, and

    Attributes:
        num_blocks: Self-attention blocks.
        num_heads: Attention heads per block (must divide ``embedding_dim``).

    ``dropout`` is 0.5 here (0.2 for :class:`GRU4RecConfig`).
    """

    dropout: float = 0.5
    num_blocks: int = 2
    num_heads: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, {
            "num_blocks": (positive_int, "a positive integer"),
            "num_heads": (lambda v: positive_int(v) and self.embedding_dim % v == 0,
                          "a positive integer dividing embedding_dim"),
        })  # fmt: skip


@dataclass(frozen=True)
class GRU4RecConfig(SequenceConfig):
    """Hyperparameters of :class:`GRU4Rec`: those of :class:`SequenceConfig` (the GRU's
    state is ``embedding_dim`` wide)."""


class SequentialRetrieval(HistoryQueries, Recommender):
    """A user is their last ``max_length`` training items in time order, read by an
    encoder (:meth:`encode`, the subclass's); the query is the encoder's output at the
    latest item, candidates are rows of the item table the input layer also reads, and
    a score is their dot product.

    Training is next-item prediction on every position of every user's time-ordered
    training windows (:func:`tfrec.data.sequences.training_windows`), with a softmax
    cross-entropy over the whole catalogue (or, with ``sampled_negatives``, over items
    drawn by training count with the log-Q correction). The users' recent items are stored with the
    model (a variable), so ``recommend(user_ids)`` reads them; ``recommend_from_history``
    (and the export's signature of that name) takes any items in the order they were met.
    """

    def __init__(self, config=None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        self.length = c.max_length
        self.user_lookup = id_lookup(self.data.users, "user_lookup")
        self.item_lookup = id_lookup(self.data.items, "item_lookup")
        self.item_table = keras.layers.Embedding(
            len(self.data.items) + 1, c.embedding_dim, name="item_embedding",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=c.init_stddev),
        )  # fmt: skip
        self.item_table.build((None,))
        table = np.zeros((len(self.data.users) + 1, self.length), np.int64)
        for row, items in enumerate(self.data.sequences or (), start=1):
            if items:
                table[row, self.length - len(items) :] = items
        self.recent_items = self.add_weight(
            name="recent_items", shape=table.shape, dtype=tf.int64, trainable=False,
            initializer=keras.initializers.Constant(table),
        )  # fmt: skip
        self.positions = self.add_weight(
            name="positions", shape=(self.length, c.embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=c.init_stddev),
        )  # fmt: skip
        self.input_dropout = keras.layers.Dropout(c.dropout)

    @classmethod
    def prepare(cls, train: Interactions, config) -> ModelData:
        """Ids and counts, and each user's last ``max_length`` training items in time order."""
        return ModelData.of(train, model=cls.registry_name, sequence_length=config.max_length)

    @classmethod
    def training_data(cls, train: Interactions, config, seed: int = 0) -> tf.data.Dataset:
        """``{"inputs", "targets"}`` windows of every user's time-ordered training items."""
        items = Vocabulary.from_interactions(train).items
        inputs, targets = training_windows(train, items, config.max_length, cls.registry_name)
        return window_dataset(inputs, targets, config.batch_size, seed)

    # === The encoder (the subclass's) ===
    def build_encoder(self) -> None:
        """Runs the encoder once on an empty sequence, so every layer it holds has its
        weights when ``__init__`` returns (a copy then takes ``set_weights`` at once)."""
        self.encode(tf.zeros([1, self.length], tf.int64))

    def encode(self, items: tf.Tensor, training: bool = False) -> tf.Tensor:  # pragma: no cover - abstract
        """Hidden states ``[B, L, d]`` of right-aligned sequences ``[B, L]`` (0 pads first)."""
        raise NotImplementedError

    def embed_sequence(self, items: tf.Tensor, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """The input layer: item embeddings scaled by sqrt(d), plus learned positions,
        dropped out; and the mask of real (non-pad) steps ``[B, L, 1]``."""
        real = tf.cast(items > 0, tf.float32)[:, :, None]
        scale = tf.sqrt(tf.cast(self.config.embedding_dim, tf.float32))
        embedded = self.item_table(items) * scale + self.positions[None]
        return self.input_dropout(embedded, training=training) * real, real

    # === The model shape: lookups, towers, scores ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.user_lookup(user_ids)

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_lookup(item_ids)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The encoder's state at each known user's latest item (an unknown user: an empty sequence)."""
        return self.encode(tf.gather(self.recent_items, index), training=training)[:, -1, :]

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.item_table(index)

    def catalogue_parts(self) -> list[tf.Tensor]:
        """The item table (shared with the input layer)."""
        return [self.item_table.embeddings]

    def has_history(self) -> bool:
        return True

    def query_from_history(self, item_index: tf.Tensor, plays: tf.Tensor) -> tf.Tensor:
        """The query of users given by their items in the order met ``[B, L']`` (0 pads
        after them; the last ``max_length`` are read). ``plays`` is not used: order, not
        weight, is what this model reads."""
        return self.encode(right_aligned(item_index, self.length))[:, -1, :]

    # === Training ===
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """Softmax cross-entropy of each step's next item over the whole catalogue (pads
        and the unknown item left out), plus L2 on the embeddings the batch reads."""
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        targets = tf.cast(features["targets"], tf.int64)
        hidden = self.encode(tf.cast(features["inputs"], tf.int64), training=training)
        real = tf.where(targets > 0)  # only steps with a target are scored
        hidden, targets = tf.gather_nd(hidden, real), tf.gather_nd(targets, real)
        if self.config.sampled_negatives:
            losses = self.sampled_softmax(hidden, targets)
        else:
            logits = tf.matmul(hidden, self.item_table.embeddings[1:], transpose_b=True)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets - 1, logits)
        loss = tf.reduce_sum(losses) / tf.maximum(tf.cast(tf.size(targets), tf.float32), 1.0)
        if self.config.l2:
            read = self.item_table(tf.concat([features["inputs"], features["targets"]], axis=1))
            loss += self.config.l2 * tf.reduce_mean(tf.reduce_sum(tf.square(read), axis=-1))
        return loss

    def sampled_softmax(self, hidden: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """Per step, the softmax cross-entropy of its next item (1-based ``targets``)
        against ``sampled_negatives`` items drawn for the batch by training count, each
        logit less the log of its expected draws (log-Q); a draw of the step's own next
        item is left out."""
        # Rows of the whole table (row 0, the pad, is never drawn): sparse gradients.
        labels, rows = targets[:, None], len(self.data.items) + 1
        drawn = tf.random.fixed_unigram_candidate_sampler(
            labels, num_true=1, num_sampled=self.config.sampled_negatives, unique=False,
            range_max=rows, unigrams=[0.0, *(float(c) for c in self.data.item_counts)],
        )  # fmt: skip
        return tf.nn.sampled_softmax_loss(
            self.item_table.embeddings, tf.zeros([rows]), labels, hidden,
            self.config.sampled_negatives, rows, sampled_values=drawn,
        )  # fmt: skip

    def export_config(self) -> dict:
        return {**super().export_config(), "max_length": self.length}


@register(
    "sasrec",
    config=SASRecConfig,
    task="retrieval",
    description="SASRec: causal self-attention over a user's recent items, next-item softmax over the catalogue",
    paper="Kang & McAuley, Self-Attentive Sequential Recommendation, ICDM 2018; full softmax as in "
    "Klenitskiy & Vasilev, RecSys 2023",
)
class SASRec(SequentialRetrieval):
    """Self-attention over the last ``max_length`` items, each step attending to itself
    and the steps before it (learned positions, pre-layer-norm blocks, a shared item table).

    Example:
        >>> model = tfrec.training.train("sasrec", split.train).model
        >>> model.recommend(["u1"], k=10)
        >>> model.recommend_from_history([["i3", "i7", "i2"]], k=10)
    """

    def __init__(self, config: SASRecConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        d = c.embedding_dim
        self.attention = [
            keras.layers.MultiHeadAttention(c.num_heads, d // c.num_heads, dropout=c.dropout, name=f"attention_{b}")
            for b in range(c.num_blocks)
        ]
        self.feed_forward = [
            keras.Sequential([keras.layers.Dense(d, activation="relu"), keras.layers.Dropout(c.dropout),
                              keras.layers.Dense(d), keras.layers.Dropout(c.dropout)], name=f"feed_forward_{b}")
            for b in range(c.num_blocks)
        ]  # fmt: skip
        self.norms = [keras.layers.LayerNormalization(epsilon=1e-6, name=f"norm_{j}") for j in range(2 * c.num_blocks + 1)]
        self.build_encoder()

    def encode(self, items: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.attend(items, training)[0]

    def attend(self, items: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Hidden states ``[B, L, d]`` and each block's attention weights ``[B, heads, L, L]``
        (row: the attending step, column: the step attended to)."""
        x, real = self.embed_sequence(items, training)
        steps = tf.shape(items)[1]
        causal = tf.linalg.band_part(tf.ones([steps, steps], tf.bool), -1, 0)
        mask = causal[None] & (items > 0)[:, None, :]  # attend to earlier real steps only
        weights = []
        for b, (attention, feed_forward) in enumerate(zip(self.attention, self.feed_forward)):
            normed = self.norms[2 * b](x)
            update, scores = attention(normed, x, attention_mask=mask, training=training, return_attention_scores=True)
            weights.append(scores)
            x = x + update
            x = (x + feed_forward(self.norms[2 * b + 1](x), training=training)) * real
        return self.norms[-1](x), weights

    def attention_to_history(self, history: Sequence[str]) -> pd.DataFrame:
        """How much the query (the state at the latest item) attends to each item of one
        history given oldest first: one row per item read (unknown ids dropped, the last
        ``max_length`` kept), a column per block (weights over the items, mean over heads)."""
        index = self.item_index(tf.constant([[str(i) for i in history] or [""]]))
        known = [i for i, position in zip(history, index.numpy()[0]) if position > 0][-self.length :]
        read = right_aligned(index, self.length)
        real = read.numpy()[0] > 0
        _, weights = self.attend(read)
        columns = {f"block_{b + 1}": w.numpy()[0].mean(axis=0)[-1][real] for b, w in enumerate(weights)}
        return pd.DataFrame({"item_id": known, **columns})


@register(
    "gru4rec",
    config=GRU4RecConfig,
    task="retrieval",
    description="GRU4Rec: a GRU over a user's recent items, next-item softmax over the catalogue",
    paper="Hidasi et al., Session-based Recommendations with Recurrent Neural Networks, ICLR 2016",
)
class GRU4Rec(SequentialRetrieval):
    """A GRU over the last ``max_length`` items (pads skipped), a shared item table.

    Example:
        >>> model = tfrec.training.train("gru4rec", split.train).model
    """

    def __init__(self, config: GRU4RecConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        # A plain loop over a GRU cell: no device-specific kernel swap in the exported graph.
        self.gru = keras.layers.RNN(keras.layers.GRUCell(c.embedding_dim), return_sequences=True, name="gru")
        self.output_dropout = keras.layers.Dropout(c.dropout)
        self.build_encoder()

    def encode(self, items: tf.Tensor, training: bool = False) -> tf.Tensor:
        x, real = self.embed_sequence(items, training)
        hidden = self.gru(x, mask=items > 0, training=training)
        return self.output_dropout(hidden, training=training) * real
