"""Capabilities a model declares by inheriting them, which serving and evaluation check."""

from __future__ import annotations

from tfrec._keras import tf


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
