"""What the content models share: the item catalogue with text, its lookups and text tower."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.interactions import ITEM, USER, Interactions
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError
from tfrec.models.base import Ids, id_lookup, known
from tfrec.models.registry import non_negative, one_of, positive_int
from tfrec.models.text import ENCODERS, TextEncoder, adapt_vocabulary

TEXT = "text"
# (interaction, word) rows user_profiles() joins at once.
PROFILE_ROWS = 20_000_000

# Rules of the text-encoder config fields, shared by the content configs.
TEXT_RULES = {
    "encoder": one_of(*ENCODERS),
    "sequence_length": (positive_int, "a positive integer"),
    "max_tokens": (positive_int, "a positive integer"),
    "text_dropout": (lambda v: non_negative(v) and v < 1, "a number in [0, 1)"),
}


@dataclass(frozen=True)
class Catalogue:
    """Items a content model can embed: training items first (vocabulary order), then
    every other item of the side table with text (cold items), with their texts.

    Attributes:
        item_ids: Catalogue ids; ``item_ids[:num_trained]`` is the training vocabulary.
        texts: Text per catalogue id ("" when an item has none).
        num_trained: How many catalogue items were seen in training.
        text_vocabulary: Vectorizer vocabulary adapted on the training items' text only.
    """

    item_ids: tuple[str, ...]
    texts: tuple[str, ...]
    num_trained: int
    text_vocabulary: tuple[str, ...]

    @classmethod
    def from_data(cls, train: Interactions, vocabulary: Vocabulary, max_tokens: int) -> Catalogue:
        """Builds the catalogue of a training split; text vocabulary from training items only.

        Raises:
            DataError: the data has no item table with a ``text`` column.
        """
        table = train.items
        if table is None or TEXT not in table.columns:
            have = [] if table is None else list(table.columns)
            raise DataError(
                f"{train.name}: content models need an item table with a 'text' column; it has {have}"
            )
        text = table[TEXT].fillna("").astype(str)
        trained = list(vocabulary.items)
        known_ids = set(trained)
        cold = sorted(str(i) for i in text.index if str(i) not in known_ids)
        lookup = dict(zip(text.index.astype(str), text.to_numpy()))
        texts = [lookup.get(i, "") for i in trained + cold]
        words = adapt_vocabulary(texts[: len(trained)], max_tokens)
        return cls(tuple(trained + cold), tuple(texts), len(trained), tuple(words))


class ContentMixin:
    """Item lookups over the content catalogue and the text part of the candidate tower.

    A subclass calls :meth:`_setup_content` in ``__init__`` and defines ``user_index`` /
    ``query_from_index`` (its user tower). ``item_index`` covers the whole catalogue, so
    cold items (in the side table, absent from training) are embedded from their text;
    ``item_vocabulary`` (what ``recommend`` and full ranking rank) is the training items.
    """

    def _setup_content(
        self,
        catalogue_ids: Sequence[str],
        catalogue_texts: Sequence[str],
        num_trained: int,
        text_vocabulary: Sequence[str],
        output_dim: int,
        encoder: str,
        sequence_length: int,
        text_dropout: float,
    ) -> None:
        self.catalogue_ids = Ids(str(i) for i in catalogue_ids)
        self.catalogue_texts = Ids(str(t) for t in catalogue_texts)
        self.num_trained = int(num_trained)
        self.item_vocabulary = Ids(self.catalogue_ids[: self.num_trained])
        self.item_lookup = id_lookup(self.catalogue_ids, "item_lookup")
        self.text_encoder = TextEncoder(
            list(text_vocabulary), sequence_length=sequence_length, embedding_dim=output_dim,
            output_dim=output_dim, encoder=encoder, dropout=text_dropout, name="text_encoder",
        )  # fmt: skip
        # Token ids of every catalogue text, computed once; row 0 (unknown id) is empty text.
        tokens = self.text_encoder.tokenize(tf.constant(["", *self.catalogue_texts], dtype=tf.string))
        self.catalogue_tokens = tf.constant(tokens.numpy())

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_lookup(item_ids)

    def trained_index(self, index: tf.Tensor) -> tf.Tensor:
        """Catalogue index -> training-vocabulary index (0 for cold and unknown items)."""
        return tf.where(index <= self.num_trained, index, tf.zeros_like(index))

    def text_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The text encoding of catalogue items (numeric ops only)."""
        return self.text_encoder.encode(tf.gather(self.catalogue_tokens, index), training=training)

    def content_config(self) -> dict:
        return {
            "catalogue_ids": list(self.catalogue_ids),
            "catalogue_texts": list(self.catalogue_texts),
            "num_trained": self.num_trained,
            "text_vocabulary": list(self.text_encoder.vocabulary),
        }


def user_profiles(
    train: Interactions, vocabulary: Vocabulary, item_texts: Sequence[str], words: Sequence[str], length: int
) -> list[str]:
    """Per user (vocabulary order), the ``length`` words that best describe their training items.

    A word's weight for a user is how many of the user's items contain it times its
    inverse document frequency over the training items (tf-idf), so the profile keeps
    what is particular to the user's taste rather than the words every item has. Words
    come from ``words`` (the text vocabulary) and the first ``length`` words of each item's
    text (what its encoding sees); a user whose items have no known word gets "".
    """
    if not words:
        return [""] * len(vocabulary.users)
    vectorizer = keras.layers.TextVectorization(vocabulary=list(words), output_sequence_length=length)
    texts = np.asarray(list(item_texts), dtype=object)  # aligned with vocabulary.items
    tokens = np.concatenate([  # the words each training item's encoding sees
        vectorizer(tf.constant(texts[start : start + 4096])).numpy() for start in range(0, len(texts), 4096)
    ])  # fmt: skip
    rows, columns = np.nonzero(tokens > 1)  # skip padding (0) and the OOV token (1)
    pairs = pd.DataFrame({"item": rows, "word": tokens[rows, columns]}).drop_duplicates()
    idf = np.log(len(texts) / pairs["word"].value_counts())
    item_position = {item: position for position, item in enumerate(vocabulary.items)}
    user_position = {user: position for position, user in enumerate(vocabulary.users)}
    seen = pd.DataFrame({
        "user": train.frame[USER].map(user_position).to_numpy(),
        "item": train.frame[ITEM].map(item_position).to_numpy(),
    }).drop_duplicates()  # fmt: skip
    names = np.asarray(vectorizer.get_vocabulary(), dtype=object)
    profiles = [""] * len(vocabulary.users)
    # Users in groups whose (interaction, word) rows stay near PROFILE_ROWS, so memory is
    # bounded however large the data.
    words_per_item = max(len(pairs) / max(len(texts), 1), 1.0)
    groups = max(1, int(np.ceil(len(seen) * words_per_item / PROFILE_ROWS)))
    for users in np.array_split(np.arange(len(vocabulary.users)), groups):
        part = seen[seen["user"].between(users[0], users[-1])] if len(users) else seen.iloc[:0]
        counts = part.merge(pairs, on="item").groupby(["user", "word"]).size().rename("count").reset_index()
        counts["weight"] = counts["count"] * counts["word"].map(idf).to_numpy()
        top = counts.sort_values(["user", "weight"], ascending=[True, False]).groupby("user").head(length)
        for user, group in top.groupby("user")["word"]:
            profiles[int(user)] = " ".join(names[group.to_numpy()])
    return profiles


def content_arguments(train: Interactions, config) -> tuple[Vocabulary, dict]:
    """The vocabulary and the catalogue constructor arguments of a content model."""
    vocabulary = Vocabulary.from_interactions(train)
    catalogue = Catalogue.from_data(train, vocabulary, config.max_tokens)
    return vocabulary, {
        "catalogue_ids": catalogue.item_ids,
        "catalogue_texts": catalogue.texts,
        "num_trained": catalogue.num_trained,
        "text_vocabulary": catalogue.text_vocabulary,
        "encoder": config.encoder,
        "sequence_length": config.sequence_length,
        "text_dropout": config.text_dropout,
    }


def distinct_tokens(tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Token ids ``[B, L]`` sorted per row, and a 1.0 mask on each distinct non-padding id.

    Summing a per-token weight under the mask is a linear model over the text's set of
    words (binary bag of words), whatever the order or repetition of the words.
    """
    ordered = tf.sort(tokens, axis=1)
    previous = tf.concat([tf.zeros_like(ordered[:, :1]), ordered[:, :-1]], axis=1)
    return ordered, tf.cast((ordered > 0) & (ordered != previous), tf.float32)


def id_dropout_mask(index: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
    """1.0 for known ids, 0.0 for unknown ones and, in training, for a ``rate`` share of rows."""
    keep = known(index)
    if training and rate > 0:
        keep = keep * tf.cast(tf.random.uniform(tf.shape(keep)) >= rate, tf.float32)
    return keep[:, None]


def embedding(rows: int, width: int, name: str, stddev: float = 0.05) -> keras.layers.Embedding:
    """A built embedding table with a normal initialisation."""
    layer = keras.layers.Embedding(
        rows, width, embeddings_initializer=keras.initializers.RandomNormal(0.0, stddev), name=name
    )
    layer.build((None,))
    return layer
