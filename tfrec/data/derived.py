"""Features a model derives from its training split: side-feature tokens, the content
catalogue, its text vocabulary and the users' text profiles. Computed once, handed to the
model (inside :class:`tfrec.data.ModelData`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.interactions import ITEM, TIMESTAMP, USER, Interactions
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError

AUTO = "auto"
# Side features used by default when the data has them.
AUTO_USER_FEATURES = ("age", "gender", "occupation")
AUTO_ITEM_FEATURES = ("genres",)
# Derived from the training interactions: the bucket of an id's first timestamp.
FIRST_SEEN = "first_seen"
NUMERIC_BUCKETS = 10
TEXT = "text"
# (interaction, word) rows user_profiles() joins at once.
PROFILE_ROWS = 20_000_000


def side_features(
    data: Interactions, ids: Sequence[str], requested: Sequence[str], side: str
) -> dict[str, list[list[str]]]:
    """Tokens of each requested side feature for each id (aligned with ``ids``).

    Args:
        data: The training split (its user/item table and timestamps).
        ids: The vocabulary to align with.
        requested: Column names, ``auto`` or ``first_seen``.
        side: ``user`` or ``item``.

    Returns:
        ``{feature: [[token, ...] per id]}``.

    Raises:
        DataError: an explicitly requested column the data does not have.
    """
    table = data.users if side == "user" else data.items
    key = USER if side == "user" else ITEM
    defaults = AUTO_USER_FEATURES if side == "user" else AUTO_ITEM_FEATURES
    names: list[str] = []
    for name in requested:
        if name == AUTO:
            names += [c for c in defaults if table is not None and c in table.columns]
            if TIMESTAMP in data.frame.columns:
                names.append(FIRST_SEEN)
        elif name == FIRST_SEEN:
            if TIMESTAMP not in data.frame.columns:
                raise DataError(f"{side} feature 'first_seen' needs timestamps; {data.name} has none")
            names.append(name)
        elif table is None or name not in table.columns:
            have = [] if table is None else list(table.columns)
            raise DataError(f"{data.name}: no {side} column {name!r} for a side feature; it has {have}")
        else:
            names.append(name)
    out = {}
    index = pd.Index(list(ids))
    for name in dict.fromkeys(names):
        if name == FIRST_SEEN:
            column = data.frame.groupby(key)[TIMESTAMP].min().reindex(index)
        else:
            column = table[name].reindex(index)
        out[name] = _tokens(column)
    return out


def _tokens(column: pd.Series) -> list[list[str]]:
    """Numeric: decile bucket; text: ``|``-separated values; missing: no token."""
    if column.dtype.kind in "iuf":
        values = column.to_numpy(dtype=np.float64)
        present = ~np.isnan(values)
        edges = (
            np.unique(np.quantile(values[present], np.linspace(0, 1, NUMERIC_BUCKETS + 1)[1:-1]))
            if present.any()
            else []
        )
        buckets = np.searchsorted(edges, values, side="right")
        return [[f"b{b}"] if ok else [] for b, ok in zip(buckets, present)]
    return [[t for t in str(v).split("|") if t] if isinstance(v, str) else [] for v in column]


def adapt_vocabulary(texts: Sequence[str], max_tokens: int) -> list[str]:
    """The vectorizer vocabulary learned from ``texts`` (most frequent first, specials excluded)."""
    vectorizer = keras.layers.TextVectorization(max_tokens=max_tokens + 2, output_mode="int")
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(np.asarray(list(texts), dtype=object)).batch(1024))
    return [str(t) for t in vectorizer.get_vocabulary()[2:]]  # drop "" (padding) and "[UNK]"


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
