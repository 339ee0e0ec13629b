"""What the content models share: the catalogue's text tower and per-word bias helpers."""

from __future__ import annotations

from tfrec._keras import keras, tf
from tfrec.core.ids import id_lookup
from tfrec.data.derived import Catalogue
from tfrec.data.interactions import Interactions
from tfrec.data.model_data import ModelData
from tfrec.models.registry import non_negative, one_of, positive_int
from tfrec.models.text import ENCODERS, TextEncoder
from tfrec.models.towers import IdTower

# Rules of the text-encoder config fields, shared by the content configs.
TEXT_RULES = {
    "encoder": one_of(*ENCODERS),
    "sequence_length": (positive_int, "a positive integer"),
    "max_tokens": (positive_int, "a positive integer"),
    "text_dropout": (lambda v: non_negative(v) and v < 1, "a number in [0, 1)"),
}


def content_data(cls, train: Interactions, config, profiles: bool = False) -> ModelData:
    """A content model's data: vocabularies, counts, the catalogue (text vocabulary of
    ``config.max_tokens`` words), ratings for rating models, and with ``profiles`` each
    user's ``config.sequence_length``-word text profile."""
    return ModelData.of(
        train,
        model=cls.registry_name,
        ratings=cls.task_for(config) == "rating",
        text_tokens=config.max_tokens,
        profile_length=config.sequence_length if profiles else None,
    )


@keras.utils.register_keras_serializable(package="tfrec")
class CatalogueText(keras.layers.Layer):
    """Item lookups over a content catalogue and the text encoding of its items.

    The lookup covers the whole catalogue (training items, then cold items with text), so
    a cold item is embedded from its text; the token ids of every catalogue text are
    computed once (row 0, unknown ids, is the empty text).

    Args:
        catalogue: The catalogue (:class:`tfrec.data.derived.Catalogue`).
        output_dim: Width of the text encoding.
        encoder: ``mean``, ``cnn`` or ``transformer``.
        sequence_length: Tokens kept per text.
        text_dropout: Dropout on the encoding in training.
    """

    def __init__(
        self, catalogue: Catalogue, output_dim: int, encoder: str, sequence_length: int, text_dropout: float, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(catalogue, dict):
            catalogue = Catalogue(**{k: v if k == "num_trained" else tuple(v) for k, v in catalogue.items()})
        self.catalogue = catalogue
        self.num_trained = int(catalogue.num_trained)
        self.lookup = id_lookup(catalogue.item_ids, "item_lookup")
        self.text_encoder = TextEncoder(
            list(catalogue.text_vocabulary), sequence_length=sequence_length, embedding_dim=output_dim,
            output_dim=output_dim, encoder=encoder, dropout=text_dropout, name="text_encoder",
        )  # fmt: skip
        tokens = self.text_encoder.tokenize(tf.constant(["", *catalogue.texts], dtype=tf.string)).numpy()
        # A variable, not a constant: a constant would put the whole corpus in the graph
        # (saved_model.pb, capped at 2 GB by protobuf); int32 halves int64's bytes.
        self.tokens = self.add_weight(
            name="catalogue_tokens", shape=tokens.shape, dtype=tf.int32, trainable=False,
            initializer=keras.initializers.Constant(tokens.astype("int32")),
        )  # fmt: skip

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "catalogue": {
                "item_ids": list(self.catalogue.item_ids),
                "texts": list(self.catalogue.texts),
                "num_trained": self.num_trained,
                "text_vocabulary": list(self.catalogue.text_vocabulary),
            },
            "output_dim": self.text_encoder.output_dim,
            "encoder": self.text_encoder.encoder,
            "sequence_length": self.text_encoder.sequence_length,
            "text_dropout": self.text_encoder.dropout,
        }

    def example_texts(self, count: int) -> list[str]:
        """Up to ``count`` catalogue texts (for warmup requests)."""
        return list(self.catalogue.texts[:count])

    def trained_index(self, index: tf.Tensor) -> tf.Tensor:
        """Catalogue index -> training-vocabulary index (0 for cold and unknown items)."""
        return tf.where(index <= self.num_trained, index, tf.zeros_like(index))

    def tokens_of(self, index: tf.Tensor) -> tf.Tensor:
        """Token ids ``[B, L]`` of catalogue items."""
        return tf.cast(tf.gather(self.tokens, index), tf.int64)

    def encode(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The text encoding of catalogue items (numeric ops only)."""
        return self.text_encoder.encode(self.tokens_of(index), training=training)


def user_and_catalogue(data: ModelData, config) -> tuple[IdTower, CatalogueText]:
    """The user tower (an ``IdTower`` of ``config.embedding_dim``) and the catalogue's text
    tower that every content model starts from."""
    users = IdTower(data.users, config.embedding_dim, init_stddev=0.05, name="query_tower")
    text = CatalogueText(
        data.catalogue, config.embedding_dim, config.encoder, config.sequence_length, config.text_dropout,
        name="content",
    )  # fmt: skip
    return users, text


def distinct_tokens(tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Token ids ``[B, L]`` sorted per row, and a 1.0 mask on each distinct non-padding id.

    Summing a per-token weight under the mask is a linear model over the text's set of
    words (binary bag of words), whatever the order or repetition of the words.
    """
    ordered = tf.sort(tokens, axis=1)
    previous = tf.concat([tf.zeros_like(ordered[:, :1]), ordered[:, :-1]], axis=1)
    return ordered, tf.cast((ordered > 0) & (ordered != previous), tf.float32)
