"""Text encoder: raw strings -> TextVectorization -> token embeddings -> mean / CNN / Transformer."""

from __future__ import annotations

from collections.abc import Sequence

from tfrec._keras import keras, tf
from tfrec.core.ids import Ids

ENCODERS = ("mean", "cnn", "transformer")


@keras.utils.register_keras_serializable(package="tfrec")
class TextEncoder(keras.layers.Layer):
    """Encodes raw text into a fixed-width vector with core TensorFlow ops only.

    The layer owns its ``TextVectorization`` (lower-casing, punctuation stripping,
    whitespace split, a fixed vocabulary with one OOV token) so the exported model takes
    raw strings. Unknown words use the OOV token; an empty text encodes to the output
    layer's bias. Encoders:

    - ``mean``: the mean of the token embeddings (a bag of words);
    - ``cnn``: a 1-D convolution over the tokens, max-pooled over positions (Kim, 2014);
    - ``transformer``: one self-attention block with learned positions, mean-pooled
      (Vaswani et al., 2017).

    Args:
        vocabulary: Vectorizer vocabulary (from :func:`adapt_vocabulary` on training text).
        sequence_length: Tokens kept per text (padded or truncated).
        embedding_dim: Token embedding width.
        output_dim: Width of the encoding.
        encoder: ``mean``, ``cnn`` or ``transformer``.
        dropout: Dropout on the pooled encoding during training.

    Example:
        >>> encoder = tfrec.models.TextEncoder(["good", "film"], output_dim=8)
        >>> encoder(tf.constant(["a good film", ""])).shape
        TensorShape([2, 8])
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        sequence_length: int = 64,
        embedding_dim: int = 64,
        output_dim: int = 64,
        encoder: str = "mean",
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        # === Config ===
        self.vocabulary = Ids(str(v) for v in vocabulary)
        self.sequence_length = int(sequence_length)
        self.embedding_dim = int(embedding_dim)
        self.output_dim = int(output_dim)
        self.encoder = encoder
        self.dropout = float(dropout)
        # === Layers ===
        self.vectorizer = keras.layers.TextVectorization(
            output_mode="int",
            output_sequence_length=self.sequence_length,
            vocabulary=list(self.vocabulary) or None,
            name="vectorizer",
        )
        size = len(self.vocabulary) + 2
        self.token_embedding = keras.layers.Embedding(size, self.embedding_dim, name="token_embedding")
        self.token_embedding.build((None, None))
        width = self.embedding_dim
        if encoder == "cnn":
            self.conv = keras.layers.Conv1D(
                self.embedding_dim, 3, padding="same", activation="relu", name="conv"
            )
            self.conv.build((None, self.sequence_length, width))
        if encoder == "transformer":
            self.positions = keras.layers.Embedding(self.sequence_length, width, name="positions")
            self.positions.build((None,))
            self.attention = keras.layers.MultiHeadAttention(2, max(width // 2, 1), name="attention")
            self.norm_1 = keras.layers.LayerNormalization(name="norm_1")
            self.norm_1.build((None, self.sequence_length, width))
            self.feed_forward = keras.layers.Dense(width, activation="relu", name="feed_forward")
            self.feed_forward.build((None, self.sequence_length, width))
            self.norm_2 = keras.layers.LayerNormalization(name="norm_2")
            self.norm_2.build((None, self.sequence_length, width))
        self.output_layer = keras.layers.Dense(self.output_dim, name="output")
        self.output_layer.build((None, width))
        self.drop = keras.layers.Dropout(self.dropout)
        # One pass over an empty text creates every variable now (attention builds lazily),
        # so saving and loading never depend on a first call.
        self.encode(tf.zeros([1, self.sequence_length], tf.int64))

    def tokenize(self, texts: tf.Tensor) -> tf.Tensor:
        """Raw strings ``[B]`` -> token ids ``[B, sequence_length]`` (0 = padding, 1 = OOV)."""
        if not self.vocabulary:  # no training text at all: every text is empty
            return tf.zeros([tf.shape(texts)[0], self.sequence_length], tf.int64)
        return tf.cast(self.vectorizer(tf.reshape(texts, [-1])), tf.int64)

    def encode(self, tokens: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Token ids ``[B, L]`` -> encodings ``[B, output_dim]`` (numeric ops only)."""
        present = tf.cast(tokens > 0, tf.float32)[:, :, None]
        count = tf.maximum(tf.reduce_sum(present, axis=1), 1.0)
        x = self.token_embedding(tokens) * present
        if self.encoder == "mean":
            pooled = tf.reduce_sum(x, axis=1) / count
        elif self.encoder == "cnn":
            # ReLU outputs are >= 0, so zeroing the padding leaves the max over real tokens.
            pooled = tf.reduce_max(self.conv(x) * present, axis=1)
        else:
            x = x + self.positions(tf.range(tf.shape(tokens)[1]))[None] * present
            mask = tf.cast(tokens > 0, tf.bool)
            attended = self.attention(
                x, x, attention_mask=mask[:, None, :] & mask[:, :, None], training=training
            )
            x = self.norm_1(x + attended)
            x = self.norm_2(x + self.feed_forward(x)) * present
            pooled = tf.reduce_sum(x, axis=1) / count
        return self.output_layer(self.drop(pooled, training=training))

    def call(self, texts: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.encode(self.tokenize(texts), training=training)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary),
            "sequence_length": self.sequence_length,
            "embedding_dim": self.embedding_dim,
            "output_dim": self.output_dim,
            "encoder": self.encoder,
            "dropout": self.dropout,
        }
