"""Dense item features and listening histories as tower inputs: a catalogue of items'
numeric vectors (normalized inside the model, so an export takes raw values) and a
weighted pooling of the items a user interacted with."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tfrec._keras import keras, tf
from tfrec.core.ids import Ids, id_lookup
from tfrec.data.derived import DenseTable


@keras.utils.register_keras_serializable(package="tfrec")
class CatalogueFeatures(keras.layers.Layer):
    """Item lookups over the training items plus the cold items that have a feature
    vector, and each item's vector normalized and projected to ``output_dim``.

    Catalogue indices ``1..len(trained_items)`` are the training vocabulary's (so an id
    tower over ``trained_items`` reads them unchanged); higher indices are cold items
    with features, 0 is unknown. The ``Normalization`` statistics are the mean and
    variance of the training items' vectors only; an item without a vector (or an
    unknown id) contributes zeros.

    Args:
        table: The items' raw vectors (:class:`tfrec.data.derived.DenseTable`).
        trained_items: The training vocabulary (most popular first).
        output_dim: Width of the projection.
        hidden_units: ReLU layers between the normalized vector and the (linear) projection.
    """

    def __init__(
        self,
        table: DenseTable | dict,
        trained_items: Sequence[str],
        output_dim: int,
        hidden_units: Sequence[int] = (),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.table = table if isinstance(table, DenseTable) else DenseTable.from_config(table)
        self.trained_items = Ids(trained_items)
        self.output_dim = int(output_dim)
        self.hidden_units = [int(u) for u in hidden_units]
        self.num_features = len(self.table.names)
        self.num_trained = len(self.trained_items)
        cold = list(self.table.item_ids[self.table.num_trained :])
        self.item_ids = Ids([*self.trained_items, *cold])
        # === Data ===
        values = np.asarray(self.table.values, np.float32).reshape(-1, self.num_features)
        rows = {item: position for position, item in enumerate(self.table.item_ids)}
        aligned = np.zeros((len(self.item_ids) + 1, self.num_features), np.float32)
        present = np.zeros(len(self.item_ids) + 1, np.float32)
        for index, item in enumerate(self.item_ids, start=1):
            if item in rows:
                aligned[index], present[index] = values[rows[item]], 1.0
        self.values = tf.constant(aligned)
        self.present = tf.constant(present)
        trained = values[: self.table.num_trained]
        # === Layers ===
        self.lookup = id_lookup(self.item_ids, "item_lookup")
        self.normalization = keras.layers.Normalization(
            mean=trained.mean(axis=0), variance=trained.var(axis=0), name="normalization"
        )
        self.normalization.build((None, self.num_features))
        self.hidden, width = [], self.num_features
        for position, units in enumerate(self.hidden_units):
            layer = keras.layers.Dense(units, activation="relu", name=f"hidden_{position}")
            layer.build((None, width))
            self.hidden.append(layer)
            width = units
        self.projection = keras.layers.Dense(self.output_dim, name="projection")
        self.projection.build((None, width))

    def trained_index(self, index: tf.Tensor) -> tf.Tensor:
        """Catalogue index -> training-vocabulary index (0 for cold and unknown items)."""
        return tf.where(index <= self.num_trained, index, tf.zeros_like(index))

    def project(self, values: tf.Tensor) -> tf.Tensor:
        """Normalized raw vectors ``[B, F]`` through the hidden layers and the projection."""
        x = self.normalization(values)
        for layer in self.hidden:
            x = layer(x)
        return self.projection(x)

    def from_values(self, values: tf.Tensor) -> tf.Tensor:
        """The projection of raw vectors ``[B, F]``; a row with a non-finite value gives zeros."""
        finite = tf.reduce_all(tf.math.is_finite(values), axis=1, keepdims=True)
        clean = tf.where(finite, values, tf.zeros_like(values))
        return self.project(clean) * tf.cast(finite, tf.float32)

    def from_index(self, index: tf.Tensor) -> tf.Tensor:
        """The projection of catalogue items' vectors ``[B, output_dim]`` (zeros where none)."""
        return self.project(tf.gather(self.values, index)) * tf.gather(self.present, index)[:, None]

    def example_values(self, count: int) -> np.ndarray:
        """Up to ``count`` raw vectors of training items (for warmup requests)."""
        return np.asarray(self.table.values[:count], np.float32).reshape(-1, self.num_features)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "table": self.table.to_config(),
            "trained_items": list(self.trained_items),
            "output_dim": self.output_dim,
            "hidden_units": self.hidden_units,
        }


@keras.utils.register_keras_serializable(package="tfrec")
class HistoryPool(keras.layers.Layer):
    """A user from the items they interacted with: the weighted mean of the items'
    embeddings, linearly projected to ``output_dim``.

    Holds each known user's history (up to ``L`` item indices and weights, padded with
    index 0); :meth:`pool` also takes any history, so a new user with a history gets a
    query vector without retraining. Weights are ``log1p`` of the interaction weight
    (a play count; 1 when the data has none).

    Args:
        items: Per user (vocabulary order), 1-based item indices.
        weights: Their weights, aligned with ``items``.
        output_dim: Width of the projection (the query tower's embedding width).
        input_dim: Width of the item embeddings it pools.
    """

    def __init__(
        self,
        items: Sequence[Sequence[int]],
        weights: Sequence[Sequence[float]],
        output_dim: int,
        input_dim: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.items = Ids(tuple(int(i) for i in row) for row in items)
        self.item_weights = Ids(tuple(float(w) for w in row) for row in weights)
        self.output_dim, self.input_dim = int(output_dim), int(input_dim)
        self.length = max(1, max((len(r) for r in self.items), default=1))
        table = np.zeros((len(self.items) + 1, self.length), np.int64)
        mass = np.zeros((len(self.items) + 1, self.length), np.float32)
        for row, (values, w) in enumerate(zip(self.items, self.item_weights), start=1):
            table[row, : len(values)], mass[row, : len(w)] = values, w
        self.item_table, self.weight_table = tf.constant(table), tf.constant(mass)
        self.projection = keras.layers.Dense(self.output_dim, use_bias=False, name="projection")
        self.projection.build((None, self.input_dim))

    def of_users(self, user_index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Known users' histories ``(items int64[B, L], weights float32[B, L])`` (empty for unknown)."""
        return tf.gather(self.item_table, user_index), tf.gather(self.weight_table, user_index)

    def pool(
        self, items: tf.Tensor, weights: tf.Tensor, embed_items: Callable[[tf.Tensor], tf.Tensor]
    ) -> tf.Tensor:
        """The projected weighted mean of ``embed_items`` over a history ``[B, L]`` (index 0
        and weight 0 entries ignored); zeros for an empty history."""
        weights = weights * tf.cast(items > 0, tf.float32)
        shape = tf.shape(items)
        embedded = embed_items(tf.reshape(items, [-1]))
        embedded = tf.reshape(embedded, [shape[0], shape[1], -1])
        total = tf.reduce_sum(embedded * weights[:, :, None], axis=1)
        mean = total / tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1e-6)
        return self.projection(mean)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "items": [list(r) for r in self.items],
            "weights": [list(r) for r in self.item_weights],
            "output_dim": self.output_dim,
            "input_dim": self.input_dim,
        }


def history_weights(plays: tf.Tensor) -> tf.Tensor:
    """A history entry's pooling weight from its raw interaction weight: ``log1p``."""
    return tf.math.log1p(tf.maximum(tf.cast(plays, tf.float32), 0.0))
