"""Features a model derives from its training split: side-feature tokens, the content
catalogue, its text vocabulary, the users' text profiles, dense item features and
listening histories. Computed once, handed to the
model (inside :class:`tfrec.data.ModelData`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.interactions import ITEM, TIMESTAMP, USER, WEIGHT, Interactions
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


def dense_columns(table: pd.DataFrame | None, patterns: Sequence[str], where: str) -> list[str]:
    """The numeric item-table columns named by ``patterns`` (exact names or globs such as
    ``audio_*``), in table order.

    Raises:
        DataError: a pattern that matches no numeric column (the message lists them).
    """
    numeric = [str(c) for c in ([] if table is None else table.columns) if table[c].dtype.kind in "iuf"]
    chosen: list[str] = []
    for pattern in patterns:
        matched = [c for c in numeric if fnmatch.fnmatchcase(c, pattern)]
        if not matched:
            raise DataError(
                f"{where}: no numeric item column matches {pattern!r}; numeric columns: {numeric}"
            )
        chosen += [c for c in matched if c not in chosen]
    return [c for c in numeric if c in chosen]


@dataclass(frozen=True)
class DenseTable:
    """Items' numeric feature vectors (audio descriptors, a precomputed embedding): the
    training items that have one first (vocabulary order), then every other item of the
    side table that has one (cold items). An item has a vector when all its columns are
    finite.

    Attributes:
        item_ids: Ids of the items with a vector; ``item_ids[:num_trained]`` are training items.
        values: One row of raw values per id.
        names: The feature columns.
        num_trained: How many rows belong to training items (what normalization is adapted on).
    """

    item_ids: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    names: tuple[str, ...]
    num_trained: int

    @classmethod
    def from_data(cls, train: Interactions, vocabulary: Vocabulary, patterns: Sequence[str]) -> DenseTable:
        """The dense features ``patterns`` select from ``train``'s item table.

        Raises:
            DataError: no item table, no matching numeric column, or no training item
                with a complete vector.
        """
        where = f"{train.name}: dense item features"
        table = train.items
        names = dense_columns(table, patterns, where)
        values = table[names].to_numpy(dtype=np.float64)
        complete = np.isfinite(values).all(axis=1)
        ids = table.index.astype(str).to_numpy()
        row = dict(zip(ids[complete], values[complete]))
        trained = [i for i in vocabulary.items if i in row]
        if not trained:
            raise DataError(f"{where}: no training item has all of {names}")
        known_ids = set(vocabulary.items)
        cold = sorted(i for i in row if i not in known_ids)
        ordered = trained + cold
        rows = tuple(tuple(float(np.float32(v)) for v in row[i]) for i in ordered)
        return cls(tuple(ordered), rows, tuple(names), len(trained))

    def to_config(self) -> dict:
        return {"item_ids": list(self.item_ids), "values": [list(r) for r in self.values],
                "names": list(self.names), "num_trained": self.num_trained}  # fmt: skip

    @classmethod
    def from_config(cls, config: dict) -> DenseTable:
        return cls(
            tuple(config["item_ids"]), tuple(tuple(r) for r in config["values"]), tuple(config["names"]),
            int(config["num_trained"]),
        )  # fmt: skip


def histories(
    train: Interactions, vocabulary: Vocabulary, length: int
) -> tuple[list[list[int]], list[list[float]]]:
    """Per user (vocabulary order), up to ``length`` of their training items and weights.

    An item's weight is ``log1p`` of the interaction's ``weight`` (a play count; 1 when
    the data has no weights), summed over repeated pairs. Users with more items keep the
    heaviest ones (then the latest, where there are timestamps).

    Returns:
        ``(items, weights)``: per user, 1-based item-vocabulary indices and their weights.
    """
    frame = train.frame
    item_position = {item: position + 1 for position, item in enumerate(vocabulary.items)}
    user_position = {user: position for position, user in enumerate(vocabulary.users)}
    pairs = pd.DataFrame({
        "user": frame[USER].map(user_position).to_numpy(),
        "item": frame[ITEM].map(item_position).to_numpy(),
        "weight": np.log1p(frame[WEIGHT].to_numpy(np.float64) if WEIGHT in frame.columns else 1.0),
        "time": frame[TIMESTAMP].to_numpy() if TIMESTAMP in frame.columns else 0,
    }).dropna(subset=["user", "item"])  # fmt: skip
    pairs = pairs.groupby(["user", "item"], as_index=False).agg(
        weight=("weight", "sum"), time=("time", "max")
    )
    top = (
        pairs.sort_values(["user", "weight", "time"], ascending=[True, False, False])
        .groupby("user")
        .head(length)
    )
    items: list[list[int]] = [[] for _ in vocabulary.users]
    weights: list[list[float]] = [[] for _ in vocabulary.users]
    for user, group in top.groupby("user"):
        items[int(user)] = group["item"].astype(np.int64).tolist()
        weights[int(user)] = [float(np.float32(w)) for w in group["weight"]]
    return items, weights
