"""Capabilities a model declares by inheriting them, which serving and evaluation check."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrec._keras import tf
from tfrec.core.chunks import top_k_chunked
from tfrec.errors import TfrecError
from tfrec.models.scoring import check_k


class TextCandidates:
    """A model that embeds items given only by their text (cold start).

    The export adds the ``item_embedding_from_text`` and ``score_text`` signatures for
    such a model, with warmup requests on :meth:`example_texts`.
    """

    def candidate_from_text(self, texts: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        """The candidate embedding ``[n, d]`` of items given by their raw text."""
        raise NotImplementedError

    def example_texts(self, count: int) -> list[str]:  # pragma: no cover - abstract
        """Up to ``count`` item texts the model was built with (for warmup requests)."""
        raise NotImplementedError


class FeatureCandidates:
    """A model that embeds items given only by their dense feature vector (cold start).

    The export adds the ``item_embedding_from_features`` and ``score_features``
    signatures for such a model when :meth:`feature_names` is not empty, with warmup
    requests on :meth:`example_features`.
    """

    def feature_names(self) -> list[str]:  # pragma: no cover - abstract
        """The feature columns, in the order a vector lists them (empty: built without any)."""
        raise NotImplementedError

    def candidate_from_features(self, values: tf.Tensor) -> tf.Tensor:  # pragma: no cover - abstract
        """The candidate embedding ``[n, d]`` of items given by their raw feature vectors ``[n, F]``."""
        raise NotImplementedError

    def example_features(self, count: int):  # pragma: no cover - abstract
        """Up to ``count`` raw feature vectors the model was built with (for warmup requests)."""
        raise NotImplementedError


class HistoryQueries:
    """A model whose query tower reads a user's history, so a new user with a history is
    served without retraining: the export adds ``recommend_from_history`` when
    :meth:`has_history`."""

    def has_history(self) -> bool:  # pragma: no cover - abstract
        """Whether this model was built with a history tower."""
        raise NotImplementedError

    def query_from_history(self, item_index: tf.Tensor, plays: tf.Tensor) -> tf.Tensor:  # pragma: no cover
        """The query embedding ``[B, d]`` of users given by looked-up items ``[B, L]`` (0 pads)
        and their raw interaction weights ``[B, L]`` (play counts; 1 where there are none)."""
        raise NotImplementedError

    def recommend_from_history(
        self,
        histories: Sequence[Sequence[str]],
        k: int = 10,
        *,
        weights: Sequence[Sequence[float]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` catalogue items for users given by their histories (new users, no retraining).

        Args:
            histories: Per user, the item ids they interacted with, oldest first (unknown
                ids are ignored; cold items with dense features count).
            k: How many items; between 1 and the catalogue size.
            weights: Per user, each item's raw weight (play count); 1 each when None
                (sequence models read the order, not the weights).

        Returns:
            ``(item_ids, scores)`` as :meth:`recommend`; the history's items are left out.

        Raises:
            TfrecError: the model has no history tower, ``k`` out of range, or weights
                that do not match the histories.
        """
        if not self.has_history():
            raise TfrecError(f"recommend_from_history() needs a model with a history ({type(self).__name__} was "
                             "built without one; two_tower: history_length > 0)")
        catalogue = np.asarray(self.item_vocabulary, dtype=object)
        k = check_k(k, len(catalogue), "recommend_from_history()")
        weights = [[1.0] * len(h) for h in histories] if weights is None else weights
        if len(weights) != len(histories) or any(len(w) != len(h) for w, h in zip(weights, histories)):
            raise TfrecError("recommend_from_history(): weights must list one number per history item")
        width = max([1, *(len(h) for h in histories)])
        ids = np.asarray([[str(i) for i in h] + [""] * (width - len(h)) for h in histories], dtype=object)
        plays = np.asarray([[float(x) for x in w] + [0.0] * (width - len(w)) for w in weights], np.float32)
        queries = self.query_from_history(
            self.item_index(tf.constant(ids.reshape(len(histories), width))), plays
        )
        position = {item: j for j, item in enumerate(catalogue)}
        candidates = self.catalogue_embeddings()
        return top_k_chunked(
            lambda rows: self.score_all(tf.gather(queries, rows), candidates),
            len(histories), catalogue, k, lambda row: [position[i] for i in ids[row] if i in position],
        )  # fmt: skip
