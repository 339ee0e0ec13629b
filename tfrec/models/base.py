"""Building blocks shared by every tfrec model: id lookups and the recommend/score API."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions, as_interactions
from tfrec.data.seen import SeenItems
from tfrec.errors import TfrecError
from tfrec.progress import Progress


class Ids:
    """A read-only sequence of ids (or counts) that Keras and ``tf.Module`` do not walk.

    Keras wraps a list attribute in a tracked ``ListWrapper`` and saving walks tracked
    lists and every attribute's nested structure element by element, many times over:
    with 1M-item vocabularies held as lists, exporting took ~7 minutes. This type is
    neither a list, a tuple nor a registered ``Sequence``, so ``tf.nest`` treats it as a
    leaf and Keras does not track it; ``get_config`` methods turn it back into a list.
    """

    __slots__ = ("_values",)

    def __init__(self, values) -> None:
        self._values = tuple(values)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self):
        return iter(self._values)

    def __getitem__(self, key):
        value = self._values[key]
        return list(value) if isinstance(key, slice) else value

    def __contains__(self, value) -> bool:
        return value in self._values

    def index(self, value) -> int:
        """Position of the first ``value`` (ValueError if absent), as ``list.index``."""
        return self._values.index(value)

    def count(self, value) -> int:
        return self._values.count(value)

    def __eq__(self, other) -> bool:
        if isinstance(other, (Ids, list, tuple)):
            return self._values == tuple(other)
        return NotImplemented

    __hash__ = None

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self._values, dtype=dtype if dtype is not None else object)

    def __repr__(self) -> str:
        return f"Ids({len(self._values)} values)"


@keras.utils.register_keras_serializable(package="tfrec")
class IdLookup(keras.layers.StringLookup):
    """A StringLookup over raw string ids with one OOV bucket at index 0.

    Unknown ids (new users, cold items, empty strings) map to index 0 and never fail.
    The vocabulary is kept as :class:`Ids` (not a tracked list) so saving stays fast on
    large catalogues.
    """

    def __init__(self, vocabulary: Sequence[str], **kwargs) -> None:
        kwargs.update(mask_token=None, num_oov_indices=1)
        super().__init__(vocabulary=list(vocabulary), **kwargs)
        self.input_vocabulary = Ids(vocabulary)  # replaces (and untracks) the list

    def get_config(self) -> dict:
        config = super().get_config()
        config["vocabulary"] = list(self.input_vocabulary)
        return config


def id_lookup(vocabulary: Sequence[str], name: str) -> IdLookup:
    """An :class:`IdLookup` (string ids to indices, 0 for unknown ids) named ``name``."""
    return IdLookup(vocabulary, name=name)


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


# Scores held at once when ranking a catalogue (~128 MiB of float32): rows per chunk shrink
# as the catalogue grows, so recommending for many users over 1M items stays bounded.
SCORES_PER_CHUNK = 1 << 25


def rows_per_chunk(num_items: int, most: int = 1024) -> int:
    """Rows (users or items) to score at once against ``num_items`` candidates."""
    return int(max(1, min(most, SCORES_PER_CHUNK // max(num_items, 1))))


def _top_k_chunked(score_rows, num_rows: int, catalogue: np.ndarray, k: int, left_out):
    """Top-``k`` of ``score_rows(rows) -> [len(rows), num_items]`` chunk by chunk.

    ``left_out(row)`` lists catalogue positions to leave out of that row's ranking.
    Returns ``(catalogue ids [num_rows, k], scores [num_rows, k])``. Where fewer than
    ``k`` items are left after leaving some out, the row ends in ``""`` ids with score
    ``-inf``: a left-out item is never returned.
    """
    step = rows_per_chunk(len(catalogue))
    ids, values = [], []
    progress = Progress(-(-num_rows // step), "chunks", least=4)
    for start in range(0, max(num_rows, 1), step):
        progress.advance()
        rows = np.arange(start, min(start + step, num_rows))
        scores = np.array(score_rows(rows), dtype=np.float32).reshape(len(rows), len(catalogue))
        for local, row in enumerate(rows):
            scores[local, left_out(row)] = -np.inf
        top = tf.math.top_k(scores, k=k)
        ids.append(top.indices.numpy())
        values.append(top.values.numpy())
    values = np.concatenate(values)
    found = catalogue[np.concatenate(ids)]
    found[values == -np.inf] = ""
    return found, values


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
    # Each training user's items (set by ``tfrec.models.build`` / :meth:`remember_seen`):
    # ``recommend`` and the export leave them out by default. Saved with the model's
    # weights (two extra arrays), not in its config.
    seen_items: SeenItems | None = None

    # === Seen items ===
    def remember_seen(self, train: Interactions | None):
        """Stores ``train``'s (user, item) pairs so ``recommend`` leaves them out; None forgets.

        Returns:
            The model (for chaining).

        Example:
            >>> model = tfrec.models.BiasedMF.from_data(split.train, config).remember_seen(split.train)
        """
        self.seen_items = (
            None
            if train is None
            else SeenItems.from_interactions(
                as_interactions(train), self.user_vocabulary, self.item_vocabulary
            )
        )
        return self

    def build_now(self):
        """Builds the model by scoring one unknown (user, item) pair; returns the model.

        Every variable already exists after ``__init__``; calling the model once marks it
        (and its layers) built, so Keras does not warn that an unbuilt model is saved,
        checkpointed or exported.
        """
        if not self.built:
            self({"user_id": tf.constant([""]), "item_id": tf.constant([""])}, training=False)
        return self

    # === Training logs ===
    def train_step(self, data):
        return self._true_logs(super().train_step(data))

    def test_step(self, data):
        return self._true_logs(super().test_step(data))

    def _true_logs(self, logs: dict) -> dict:
        """Drops TFRS's ``regularization_loss`` (always 0: tfrec folds its L2 penalty into
        ``loss``) and ``total_loss`` (then equal to ``loss``) from the progress bar."""
        if not self.losses and isinstance(logs, dict):
            logs = {k: v for k, v in logs.items() if k not in ("regularization_loss", "total_loss")}
        return logs

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        if self.seen_items is not None:
            store["seen_offsets"] = self.seen_items.offsets
            store["seen_items"] = self.seen_items.items

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if "seen_offsets" in keys:
            self.seen_items = SeenItems(np.asarray(store["seen_offsets"]), np.asarray(store["seen_items"]))
        super().load_own_variables(_Without(store, ("seen_offsets", "seen_items")))

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
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items of the training vocabulary for each user.

        Args:
            user_ids: Raw user ids (unknown ids get the OOV user's recommendations).
            k: How many items; must be between 1 and the number of known items.
            exclude: Per user, more item ids to leave out.
            exclude_seen: Leave out each user's training items (when the model knows
                them: :attr:`seen_items`, set by ``tfrec.models.build``).

        Returns:
            ``(item_ids, scores)``: string array ``[n, k]`` and float32 array ``[n, k]``,
            best first. A user with fewer than ``k`` items left gets ``""`` ids with
            score ``-inf`` at the end of the row; a left-out item is never returned.

        Raises:
            TfrecError: ``k`` out of range, or ``exclude`` of the wrong length.
        """
        catalogue = np.asarray(self.item_vocabulary, dtype=object)
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= len(catalogue):
            raise TfrecError(f"recommend(): k must be an integer in [1, {len(catalogue)}], got {k!r}")
        users = as_strings(user_ids, "user_ids")
        if exclude is not None and len(exclude) != users.shape[0]:
            raise TfrecError(f"recommend(): exclude has {len(exclude)} lists for {users.shape[0]} users")
        position = {item: j for j, item in enumerate(catalogue)} if exclude is not None else {}
        seen = self.seen_items if exclude_seen else None
        user_rows = self.user_index(users).numpy() if seen is not None else None

        def left_out(row: int) -> list[int]:
            given = (
                [position[str(i)] for i in exclude[row] if str(i) in position] if exclude is not None else []
            )
            if seen is None:
                return given
            return [*given, *(seen.row(int(user_rows[row])) - 1)]

        queries, candidates = self.query_embedding(users), self.catalogue_embeddings()
        return _top_k_chunked(
            lambda rows: self.score_all(tf.gather(queries, rows), candidates),
            users.shape[0], catalogue, int(k), left_out,
        )  # fmt: skip

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
        table = tf.math.l2_normalize(self.catalogue_embeddings(), axis=1)
        position = {item: j for j, item in enumerate(catalogue)}
        names = [item.decode() for item in items.numpy()]

        def itself(row: int) -> list[int]:
            return [position[names[row]]] if names[row] in position else []

        return _top_k_chunked(
            lambda rows: tf.matmul(tf.gather(queries, rows), table, transpose_b=True),
            len(names), catalogue, int(k), itself,
        )  # fmt: skip

    def catalogue_embeddings(self, batch_size: int = 65_536) -> tf.Tensor:
        """Candidate-tower outputs ``[num_items, d]`` of ``item_vocabulary``, computed in batches."""
        index = np.arange(1, len(self.item_vocabulary) + 1, dtype=np.int64)
        return tf.concat(
            [
                self.candidate_from_index(tf.constant(index[s : s + batch_size]))
                for s in range(0, max(len(index), 1), batch_size)
            ],
            axis=0,
        )


class _Without:
    """A read-only view of a weights store without some keys."""

    def __init__(self, store, hidden: tuple[str, ...]) -> None:
        self._store, self._hidden = store, hidden

    def keys(self) -> list[str]:
        return [k for k in self._store.keys() if k not in self._hidden]

    def __getitem__(self, key: str):
        return self._store[key]

    def __contains__(self, key: str) -> bool:
        return key in self.keys()


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
