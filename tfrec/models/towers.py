"""Id towers: raw string id -> lookup -> embedding (+ side features) (-> MLP)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfrec._keras import keras, tf
from tfrec.core.ids import Ids, id_lookup, known


@keras.utils.register_keras_serializable(package="tfrec")
class IdTower(keras.layers.Layer):
    """Embeds raw string ids (and their side features), optionally through dense layers.

    The lookup owns the vocabulary; unknown ids use the OOV row, which is zeroed on the
    way out so an unknown id never carries a random vector.

    Side features belong to the id (a user's age bucket, an item's genres): for each
    feature the tower holds every known id's tokens, embeds them (the mean over a
    multi-valued feature's tokens) and adds them to the id embedding, as LightFM and
    SVDFeature do, so the width stays ``embedding_dim`` with or without features. The
    serving input stays the raw id alone; an unknown id has no feature tokens.

    Args:
        vocabulary: Known ids.
        embedding_dim: Width of the id embedding.
        hidden_units: Dense layer widths applied after the embedding; the last layer is
            linear, the others use ``activation``. Empty: the embedding itself.
        activation: Activation of the hidden layers.
        dropout: Dropout rate between dense layers during training.
        init_stddev: Standard deviation of the embedding's normal initialisation.
        features: ``{name: tokens per id}``, aligned with ``vocabulary`` (each entry a
            list of strings; empty when the id has none).
        id_dropout: In training, the share of rows whose id embedding is dropped (the
            side features and any ``extra`` input stay), so the tower learns to place ids
            it has never seen from what else it knows of them (DropoutNet's recipe).

    Example:
        >>> tower = tfrec.models.IdTower(["a", "b"], embedding_dim=8, hidden_units=[16, 8])
        >>> tower(tf.constant(["a", "zzz"])).shape
        TensorShape([2, 8])
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        embedding_dim: int = 64,
        hidden_units: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        init_stddev: float = 0.1,
        features: Mapping[str, Sequence[Sequence[str]]] | None = None,
        id_dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.vocabulary = Ids(vocabulary)
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation = activation
        self.dropout = float(dropout)
        self.init_stddev = float(init_stddev)
        self.id_dropout = float(id_dropout)
        self.features = {
            name: Ids(tuple(map(str, t)) for t in tokens) for name, tokens in (features or {}).items()
        }
        for name, tokens in self.features.items():
            if len(tokens) != len(self.vocabulary):
                raise ValueError(f"feature {name!r} has {len(tokens)} rows for {len(self.vocabulary)} ids")
        # === Layers ===
        self.lookup = id_lookup(self.vocabulary, "lookup")
        self.embedding = keras.layers.Embedding(
            len(self.vocabulary) + 1,
            self.embedding_dim,
            embeddings_initializer=keras.initializers.RandomNormal(0.0, self.init_stddev),
            name="embedding",
        )
        self.embedding.build((None,))
        self.feature_tokens, self.feature_embeddings = [], []
        for position, (_, tokens) in enumerate(sorted(self.features.items())):
            table = _token_table(tokens)
            self.feature_tokens.append(tf.constant(table))
            embedding = keras.layers.Embedding(
                int(table.max(initial=0)) + 1,
                self.embedding_dim,
                embeddings_initializer=keras.initializers.RandomNormal(0.0, self.init_stddev),
                name=f"feature_{position}",
            )
            embedding.build((None, None))
            self.feature_embeddings.append(embedding)
        self.dense = []
        width = self.embedding_dim
        for position, units in enumerate(self.hidden_units):
            last = position == len(self.hidden_units) - 1
            layer = keras.layers.Dense(
                units, activation=None if last else activation, name=f"dense_{position}"
            )
            layer.build((None, width))
            self.dense.append(layer)
            width = units
        self.drop = keras.layers.Dropout(self.dropout)
        self.output_dim = width

    def table(self) -> tf.Variable | None:
        """The embedding table when the tower's output is its row (no features, no dense
        layers), else None."""
        return None if self.features or self.dense else self.embedding.embeddings

    def plain_features(self) -> dict[str, list[list[str]]]:
        """The side features as plain dicts and lists (Keras wraps attributes it tracks)."""
        return {str(name): [list(row) for row in rows] for name, rows in self.features.items()}

    def from_index(
        self, index: tf.Tensor, training: bool = False, extra: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Tower output for already looked-up indices (0 = OOV).

        Args:
            index: int64[B] indices.
            training: Training mode (dropout, id dropout).
            extra: float32[B, embedding_dim] added to the embedding before the dense
                layers (dense features, a pooled history), or None.
        """
        x = self.embedding(index) * id_dropout_mask(index, self.id_dropout, training)
        if extra is not None:
            x = x + extra
        for table, embedding in zip(self.feature_tokens, self.feature_embeddings):
            tokens = tf.gather(table, index)  # [B, L], 0 = no token
            present = tf.cast(tokens > 0, tf.float32)[:, :, None]
            total = tf.reduce_sum(embedding(tokens) * present, axis=1)
            x = x + total / tf.maximum(tf.reduce_sum(present, axis=1), 1.0)
        for layer in self.dense:
            x = layer(self.drop(x, training=training) if self.dropout else x)
        return x

    def call(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.from_index(self.lookup(ids), training=training)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary),
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "activation": self.activation,
            "dropout": self.dropout,
            "init_stddev": self.init_stddev,
            "features": self.plain_features(),
            "id_dropout": self.id_dropout,
        }


def id_dropout_mask(index: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
    """``[B, 1]``: 1.0 for known ids, 0.0 for unknown ones and, in training, for a ``rate`` share of rows."""
    keep = known(index)
    if training and rate > 0:
        keep = keep * tf.cast(tf.random.uniform(tf.shape(keep)) >= rate, tf.float32)
    return keep[:, None]


def normal_table(rows: int, width: int, name: str, stddev: float = 0.05) -> keras.layers.Embedding:
    """A built ``[rows, width]`` embedding table with a normal initialisation."""
    layer = keras.layers.Embedding(
        rows, width, embeddings_initializer=keras.initializers.RandomNormal(0.0, stddev), name=name
    )
    layer.build((None,))
    return layer


def zeros_table(rows: int, name: str) -> keras.layers.Embedding:
    """A built ``[rows, 1]`` embedding table initialised at zero (biases)."""
    layer = keras.layers.Embedding(rows, 1, embeddings_initializer="zeros", name=name)
    layer.build((None,))
    return layer


def _token_table(tokens: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-id token indices ``[ids + 1, longest]``: row 0 (OOV) and padding are 0."""
    vocabulary = {t: i + 1 for i, t in enumerate(sorted({t for row in tokens for t in row}))}
    table = np.zeros((len(tokens) + 1, max((len(r) for r in tokens), default=0) or 1), np.int64)
    for row, values in enumerate(tokens, start=1):
        table[row, : len(values)] = [vocabulary[t] for t in values]
    return table
