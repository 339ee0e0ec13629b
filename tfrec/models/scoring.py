"""Scorer: score, recommend and similar_items over a query and a candidate embedding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrec._keras import tf
from tfrec.core.chunks import in_batches, top_k_chunked
from tfrec.core.ids import as_strings
from tfrec.errors import TfrecError


def check_k(k, most: int, what: str) -> int:
    """``k`` as an int in ``[1, most]``, or a TfrecError naming ``what``."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= most:
        raise TfrecError(f"{what}: k must be an integer in [1, {most}], got {k!r}")
    return int(k)


class Scorer:
    """What evaluation and recommendation need from anything that ranks items.

    A scorer has a ``task`` (``rating``, ``retrieval`` or ``ranking``), an
    ``item_vocabulary`` (what it ranks) and two embeddings of raw ids,
    :meth:`query_embedding` and :meth:`candidate_embedding`; by default the score of
    (user, item) is their dot product. Every tfrec model is a scorer, and so are the
    popularity baseline and the benchmark's peer adapters: ``tfrec.evaluate``,
    :meth:`recommend` and :meth:`similar_items` work the same on all of them. A scorer
    whose score is not a dot product overrides :meth:`score_all` and :meth:`score_cases`.
    """

    task: str = "retrieval"
    item_vocabulary: Sequence[str]

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        """The query tower's output ``[n, d]`` for raw user ids."""
        raise NotImplementedError

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        """The candidate tower's output ``[n, d]`` for raw item ids."""
        raise NotImplementedError

    def score_all(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Scores of every query against every candidate: ``[U, d]`` x ``[I, d]`` -> ``[U, I]``."""
        return tf.matmul(queries, candidates, transpose_b=True)

    def score_cases(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Scores of each query against its own candidates: ``[n, d]`` x ``[n, w, d]`` -> ``[n, w]``."""
        return tf.einsum("nd,nwd->nw", queries, candidates)

    def catalogue_embeddings(self) -> tf.Tensor:
        """Candidate embeddings ``[num_items, d]`` of ``item_vocabulary``, computed in batches."""
        return in_batches(self.candidate_embedding, np.asarray(self.item_vocabulary, dtype=object))

    def excluded_for(self, user_ids: tf.Tensor) -> list[np.ndarray] | None:
        """Per user, the catalogue positions ``recommend`` leaves out by default (None: none)."""
        return None

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Scores aligned (user, item) pairs (predicted ratings for rating models).

        Raises:
            TfrecError: the two lists differ in length, or hold non-strings.
        """
        users, items = as_strings(user_ids, "user_ids"), as_strings(item_ids, "item_ids")
        if users.shape[0] != items.shape[0]:
            raise TfrecError(f"score(): {users.shape[0]} user ids but {items.shape[0]} item ids")
        return self._score_pairs(users, items).numpy()

    def _score_pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        queries, candidates = self.query_embedding(users), self.candidate_embedding(items)
        return self.score_cases(queries, candidates[:, None, :])[:, 0]

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        *,
        exclude: Sequence[Sequence[str]] | None = None,
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items of ``item_vocabulary`` for each user.

        Args:
            user_ids: Raw user ids (unknown ids get the OOV user's recommendations).
            k: How many items; must be between 1 and the number of known items.
            exclude: Per user, more item ids to leave out.
            exclude_seen: Leave out each user's training items (when the scorer knows them).

        Returns:
            ``(item_ids, scores)``: string array ``[n, k]`` and float32 array ``[n, k]``,
            best first. A user with fewer than ``k`` items left gets ``""`` ids with
            score ``-inf`` at the end of the row; a left-out item is never returned.

        Raises:
            TfrecError: ``k`` out of range, or ``exclude`` of the wrong length.
        """
        catalogue = np.asarray(self.item_vocabulary, dtype=object)
        k = check_k(k, len(catalogue), "recommend()")
        users = as_strings(user_ids, "user_ids")
        if exclude is not None and len(exclude) != users.shape[0]:
            raise TfrecError(f"recommend(): exclude has {len(exclude)} lists for {users.shape[0]} users")
        position = {item: j for j, item in enumerate(catalogue)} if exclude is not None else {}
        seen = self.excluded_for(users) if exclude_seen else None

        def left_out(row: int) -> list[int]:
            given = [position[str(i)] for i in exclude[row] if str(i) in position] if exclude is not None else []
            return given if seen is None else [*given, *seen[row]]

        queries, candidates = self.query_embedding(users), self.catalogue_embeddings()
        return top_k_chunked(
            lambda rows: self.score_all(tf.gather(queries, rows), candidates),
            users.shape[0], catalogue, k, left_out,
        )  # fmt: skip

    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each given item: cosine of candidate embeddings.

        The item itself is left out; an unknown item id gets the OOV item's neighbours.

        Returns:
            ``(item_ids, scores)``: string array ``[n, k]`` and float32 cosine
            similarities ``[n, k]``, most similar first.

        Raises:
            TfrecError: ``k`` out of range (1 to the catalogue size minus one).

        Example:
            >>> neighbours, similarity = model.similar_items(["1", "50"], k=5)
        """
        catalogue = np.asarray(self.item_vocabulary, dtype=object)
        k = check_k(k, len(catalogue) - 1, "similar_items()")
        items = as_strings(item_ids, "item_ids")
        queries = tf.math.l2_normalize(self.candidate_embedding(items), axis=1)
        table = tf.math.l2_normalize(self.catalogue_embeddings(), axis=1)
        position = {item: j for j, item in enumerate(catalogue)}
        names = [item.decode() for item in items.numpy()]

        def itself(row: int) -> list[int]:
            return [position[names[row]]] if names[row] in position else []

        return top_k_chunked(
            lambda rows: tf.matmul(tf.gather(queries, rows), table, transpose_b=True),
            len(names), catalogue, k, itself,
        )  # fmt: skip
