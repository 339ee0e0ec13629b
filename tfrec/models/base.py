"""Building blocks shared by every tfrec model: id lookups and the recommend/score API."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrec._keras import keras, tf
from tfrec.errors import TfrecError


def id_lookup(vocabulary: Sequence[str], name: str) -> keras.layers.StringLookup:
    """A StringLookup over raw string ids with one OOV bucket at index 0.

    Unknown ids (new users, cold items, empty strings) map to index 0 and never fail.
    """
    return keras.layers.StringLookup(
        vocabulary=list(vocabulary), mask_token=None, num_oov_indices=1, name=name
    )


def known(indices: tf.Tensor) -> tf.Tensor:
    """1.0 where a looked-up index is in the vocabulary, 0.0 for the OOV bucket."""
    return tf.cast(indices > 0, tf.float32)


def as_strings(values: Sequence[str] | np.ndarray | tf.Tensor, what: str) -> tf.Tensor:
    """Converts raw ids to a 1-D string tensor, rejecting non-string input clearly."""
    if isinstance(values, tf.Tensor):
        if values.dtype != tf.string:
            raise TfrecError(f"{what} must be strings, got a {values.dtype.name} tensor")
        return tf.reshape(values, [-1])
    array = np.asarray(values, dtype=object).reshape(-1)
    return tf.constant([str(v) for v in array], dtype=tf.string, shape=[len(array)])


def replica_mean(values: tf.Tensor) -> tf.Tensor:
    """Mean of per-example values as this replica's share of the global-batch mean.

    Under a ``tf.distribute`` strategy each replica sees part of the batch and the
    gradients are summed across replicas, so each replica divides by the global batch
    size; without a strategy this is the plain mean.
    """
    return tf.nn.compute_average_loss(tf.reshape(values, [-1]))


def replica_count() -> int:
    """Replicas the active ``tf.distribute`` strategy trains on (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


class FactorizedMixin:
    """Scoring and top-K recommendation over a query tower and a candidate tower.

    A subclass defines the lookups ``user_index(ids)`` / ``item_index(ids)`` (string
    tensors to int64 indices, 0 for unknown ids), the tower math on indices
    ``query_from_index`` / ``candidate_from_index`` (float32 matrices out) and
    ``item_vocabulary`` (index ``j + 1`` is ``item_vocabulary[j]``). Keeping lookups
    apart from the math is what lets the export compile the math with XLA. By default the
    score of (user, item) is the dot product of the two; a model whose score is not a
    dot product (the NCF scorers) overrides :meth:`score_all` and :meth:`score_cases`,
    which evaluation, recommendation and export all go through.
    """

    item_vocabulary: Sequence[str]

    # === Lookups (string ids -> int64 indices, 0 = OOV); kept apart from the math ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # === Tower math on indices (XLA-compilable: no lookups, no strings) ===
    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:  # pragma: no cover
        raise NotImplementedError

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:  # pragma: no cover
        raise NotImplementedError

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        """The query tower's output for raw user ids."""
        return self.query_from_index(self.user_index(user_ids))

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        """The candidate tower's output for raw item ids."""
        return self.candidate_from_index(self.item_index(item_ids))

    def score_all(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Scores of every query against every candidate: ``[U, d]`` x ``[I, d]`` -> ``[U, I]``."""
        return tf.matmul(queries, candidates, transpose_b=True)

    def score_cases(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Scores of each query against its own candidates: ``[n, d]`` x ``[n, w, d]`` -> ``[n, w]``."""
        return tf.einsum("nd,nwd->nw", queries, candidates)

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Scores aligned (user, item) pairs.

        Args:
            user_ids: Raw user ids.
            item_ids: Raw item ids, same length.

        Returns:
            float32 scores, one per pair (predicted ratings for rating models).
        """
        users = as_strings(user_ids, "user_ids")
        items = as_strings(item_ids, "item_ids")
        if users.shape[0] != items.shape[0]:
            raise TfrecError(f"score(): {users.shape[0]} user ids but {items.shape[0]} item ids")
        return self({"user_id": users, "item_id": items}, training=False).numpy()

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        *,
        exclude: Sequence[Sequence[str]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items of the training vocabulary for each user.

        Args:
            user_ids: Raw user ids (unknown ids get the OOV user's recommendations).
            k: How many items; must be between 1 and the number of known items.
            exclude: Per user, item ids to leave out (e.g. what they already rated).

        Returns:
            ``(item_ids, scores)``: string array ``[n, k]`` and float32 array ``[n, k]``,
            best first.

        Raises:
            TfrecError: ``k`` out of range, or ``exclude`` of the wrong length.
        """
        catalogue = np.asarray(self.item_vocabulary, dtype=object)
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= len(catalogue):
            raise TfrecError(f"recommend(): k must be an integer in [1, {len(catalogue)}], got {k!r}")
        users = as_strings(user_ids, "user_ids")
        queries = self.query_embedding(users)
        candidates = self.candidate_embedding(tf.constant(catalogue, dtype=tf.string))
        scores = self.score_all(queries, candidates).numpy()
        if exclude is not None:
            if len(exclude) != scores.shape[0]:
                raise TfrecError(f"recommend(): exclude has {len(exclude)} lists for {scores.shape[0]} users")
            position = {item: j for j, item in enumerate(catalogue)}
            for row, items in enumerate(exclude):
                cols = [position[i] for i in items if i in position]
                scores[row, cols] = -np.inf
        top = tf.math.top_k(scores, k=int(k))
        return catalogue[top.indices.numpy()], top.values.numpy()

    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each given item: cosine of candidate-tower outputs.

        The item itself is left out; an unknown item id gets the OOV item's neighbours.

        Args:
            item_ids: Raw item ids.
            k: Neighbours per item, between 1 and the catalogue size minus one.

        Returns:
            ``(item_ids, scores)``: string array ``[n, k]`` and float32 cosine
            similarities ``[n, k]``, most similar first.

        Raises:
            TfrecError: ``k`` out of range.

        Example:
            >>> neighbours, similarity = model.similar_items(["1", "50"], k=5)
        """
        catalogue = np.asarray(self.item_vocabulary, dtype=object)
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k < len(catalogue):
            raise TfrecError(f"similar_items(): k must be an integer in [1, {len(catalogue) - 1}], got {k!r}")
        items = as_strings(item_ids, "item_ids")
        queries = tf.math.l2_normalize(self.candidate_embedding(items), axis=1)
        table = tf.math.l2_normalize(
            self.candidate_embedding(tf.constant(catalogue, dtype=tf.string)), axis=1
        )
        scores = tf.matmul(queries, table, transpose_b=True).numpy()
        position = {item: j for j, item in enumerate(catalogue)}
        for row, item in enumerate(items.numpy()):
            if item.decode() in position:
                scores[row, position[item.decode()]] = -np.inf
        top = tf.math.top_k(scores, k=int(k))
        return catalogue[top.indices.numpy()], top.values.numpy()


class TowerPairMixin(FactorizedMixin):
    """Lookups and tower math delegated to ``self.query_tower`` / ``self.candidate_tower``
    (``IdTower``-like layers with ``lookup`` and ``from_index``)."""

    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.query_tower.lookup(user_ids)

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.candidate_tower.lookup(item_ids)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The user (query) tower's output."""
        return self.query_tower.from_index(index, training=training)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The item (candidate) tower's output."""
        return self.candidate_tower.from_index(index, training=training)
