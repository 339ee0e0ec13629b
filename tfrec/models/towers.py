"""Id towers: raw string id -> lookup -> embedding (-> MLP)."""

from __future__ import annotations

from collections.abc import Sequence

from tfrec._keras import keras, tf
from tfrec.models.base import id_lookup, known


@keras.utils.register_keras_serializable(package="tfrec")
class IdTower(keras.layers.Layer):
    """Embeds raw string ids, optionally through a stack of dense layers.

    The lookup owns the vocabulary; unknown ids use the OOV row, which is zeroed on the
    way out so an unknown id never carries a random vector.

    Args:
        vocabulary: Known ids.
        embedding_dim: Width of the id embedding.
        hidden_units: Dense layer widths applied after the embedding; the last layer is
            linear, the others use ``activation``. Empty: the embedding itself.
        activation: Activation of the hidden layers.
        dropout: Dropout rate between dense layers during training.
        init_stddev: Standard deviation of the embedding's normal initialisation.

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
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.vocabulary = list(vocabulary)
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation = activation
        self.dropout = float(dropout)
        self.init_stddev = float(init_stddev)
        # === Layers ===
        self.lookup = id_lookup(self.vocabulary, "lookup")
        self.embedding = keras.layers.Embedding(
            len(self.vocabulary) + 1,
            self.embedding_dim,
            embeddings_initializer=keras.initializers.RandomNormal(0.0, self.init_stddev),
            name="embedding",
        )
        self.embedding.build((None,))
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

    def from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Tower output for already looked-up indices (0 = OOV)."""
        x = self.embedding(index) * known(index)[:, None]
        for layer in self.dense:
            x = layer(self.drop(x, training=training) if self.dropout else x)
        return x

    def call(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.from_index(self.lookup(ids), training=training)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "activation": self.activation,
            "dropout": self.dropout,
            "init_stddev": self.init_stddev,
        }
