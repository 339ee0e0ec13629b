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
