"""tf.data pipelines: interactions to feature dicts, negative sampling, candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.data.interactions import ITEM, RATING, USER, WEIGHT, Interactions, as_interactions
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError, TfrecError

SAMPLERS = ("uniform", "popularity")


def _side_columns(
    source: str, table: pd.DataFrame | None, keys: pd.Series, names: Sequence[str], what: str
) -> dict[str, np.ndarray]:
    """Joins side-table columns onto ``keys``: strings filled with "", numbers with 0."""
    if not names:
        return {}
    if table is None:
        raise DataError(f"{source} has no {what} table, so {what} features {list(names)} cannot be joined")
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise DataError(f"{source}: {what} table lacks {missing}; it has {list(table.columns)}")
    joined = table.reindex(keys.to_numpy())
    out = {}
    for name in names:
        column = joined[name]
        if column.dtype.kind in "iuf":
            out[name] = column.fillna(0).to_numpy(dtype=np.float32)
        else:
            out[name] = column.fillna("").astype(str).to_numpy(dtype=object)
    return out


def features(
    data: Interactions,
    *,
    item_features: Sequence[str] = (),
    user_features: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """The feature columns of every interaction as numpy arrays (ids as strings)."""
    frame = data.frame
    columns = {USER: frame[USER].to_numpy(dtype=object), ITEM: frame[ITEM].to_numpy(dtype=object)}
    columns.update(_side_columns(data.name, data.items, frame[ITEM], item_features, "item"))
    columns.update(_side_columns(data.name, data.users, frame[USER], user_features, "user"))
    return columns


def _finish(ds: tf.data.Dataset, cache: bool, prefetch: bool) -> tf.data.Dataset:
    if cache:
        ds = ds.cache()
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def shuffled_batches(
    columns, size: int, batch_size: int, seed: int, drop_remainder: bool = False
) -> tf.data.Dataset:
    """Batches of ``columns`` (a nest of arrays with ``size`` rows) in a fresh order every epoch.

    Each pass over the dataset draws one seeded permutation of the rows and gathers whole
    batches from it, instead of shuffling row by row: on 2 cores the row-level
    ``Dataset.shuffle`` competed with training for the CPU and cost ~20% of the training
    speed (bench/train_speed.py). The orders are reproducible from ``seed`` (with the
    global seed that ``keras.utils.set_random_seed`` sets).
    """
    tensors = tf.nest.map_structure(tf.constant, columns)
    batches = size // batch_size if drop_remainder else -(-size // batch_size)

    def epoch(epoch_seed: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(size, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(seed, tf.int64)])
        )

        def batch(b: tf.Tensor):
            rows = order[b * batch_size : (b + 1) * batch_size]
            return tf.nest.map_structure(lambda t: tf.gather(t, rows), tensors)

        return tf.data.Dataset.range(batches).map(batch)

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return seeds.flat_map(epoch).apply(tf.data.experimental.assert_cardinality(batches))


def _check_batch(batch_size: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size <= 0:
        raise TfrecError(f"batch_size must be a positive integer, got {batch_size!r}")


def to_dataset(
    data: Interactions | pd.DataFrame,
    *,
    label: str | None = None,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int = 0,
    item_features: Sequence[str] = (),
    user_features: Sequence[str] = (),
    cache: bool = True,
    prefetch: bool = True,
    drop_remainder: bool = False,
    weights: bool = False,
) -> tf.data.Dataset:
    """Turns interactions into a batched ``tf.data.Dataset`` of feature dicts.

    Args:
        data: The interactions (usually a training or test split), or a DataFrame
            with ``user_id`` / ``item_id`` [/ ``rating`` / ``timestamp``] columns.
        label: ``"rating"`` to yield ``(features, rating)`` pairs; None for features only.
        batch_size: Examples per batch.
        shuffle: Shuffle the examples, reshuffled each epoch from ``seed``.
        seed: Shuffle seed.
        item_features: Item-table columns to join in (e.g. ``["genres", "text"]``).
        user_features: User-table columns to join in (e.g. ``["age", "gender"]``).
        cache: Cache the batches after the first epoch.
        prefetch: Prefetch batches.
        drop_remainder: Drop the last partial batch.
        weights: Add each interaction's ``weight`` (e.g. play count) as a float32 feature.

    Returns:
        A dataset whose elements are ``{"user_id": string[B], "item_id": string[B], ...}``
        (plus a float32 ``rating[B]`` label when asked).

    Raises:
        DataError: a label or side feature the data does not have.

    Example:
        >>> ds = tfrec.data.to_dataset(split.train, label="rating", batch_size=1024)
    """
    _check_batch(batch_size)
    data = as_interactions(data)
    columns = features(data, item_features=item_features, user_features=user_features)
    if weights:
        if not data.has_weights:
            raise DataError(f"{data.name} has no {WEIGHT!r} column, so it cannot yield weights")
        columns[WEIGHT] = data.frame[WEIGHT].to_numpy(np.float32)
    if label is not None:
        if label != RATING:
            raise TfrecError(f"label must be 'rating' or None, got {label!r}")
        if not data.has_ratings:
            raise DataError(f"{data.name} has no ratings, so it cannot yield a 'rating' label")
        elements = (columns, data.frame[RATING].to_numpy(np.float32))
    else:
        elements = columns
    if shuffle:
        ds = shuffled_batches(elements, len(data), batch_size, seed, drop_remainder)
    else:
        ds = tf.data.Dataset.from_tensor_slices(elements).batch(batch_size, drop_remainder=drop_remainder)
    # Shuffled batches must not be cached, or every epoch would repeat the first order.
    return _finish(ds, cache and not shuffle, prefetch)


def with_negatives(
    data: Interactions,
    vocabulary: Vocabulary,
    *,
    num_negatives: int = 4,
    sampler: str = "uniform",
    batch_size: int = 256,
    seed: int = 0,
) -> tf.data.Dataset:
    """Pointwise training data: each positive plus sampled negatives, labels 1 and 0.

    Negatives are items of the vocabulary the user has not interacted with in ``data``,
    drawn uniformly or in proportion to training popularity, fresh every epoch and
    reproducible from ``seed`` (the NCF recipe, He et al. 2017). Collisions with the
    user's positives are redrawn up to seven times; the rare survivors are dropped.

    Args:
        data: Positive interactions (the training split).
        vocabulary: The training vocabulary (candidates for negatives).
        num_negatives: Negatives per positive (4 in the NCF paper).
        sampler: ``"uniform"`` or ``"popularity"``.
        batch_size: Positives per batch (a batch holds about ``(1 + num_negatives)`` times more).
        seed: Seed for the shuffle and the negatives.

    Returns:
        A dataset of ``({"user_id": string[N], "item_id": string[N]}, label float32[N])``.

    Example:
        >>> ds = tfrec.data.with_negatives(split.train, vocab, num_negatives=4)
    """
    _check_batch(batch_size)
    if sampler not in SAMPLERS:
        raise TfrecError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if not isinstance(num_negatives, (int, np.integer)) or num_negatives < 0:
        raise TfrecError(f"num_negatives must be a non-negative integer, got {num_negatives!r}")
    user_index = {u: i for i, u in enumerate(vocabulary.users)}
    item_index = {v: i for i, v in enumerate(vocabulary.items)}
    users = data.frame[USER].map(user_index)
    items = data.frame[ITEM].map(item_index)
    known = (users.notna() & items.notna()).to_numpy()
    if not known.any():
        raise DataError(f"{data.name}: no interaction has both user and item in the vocabulary")
    users = users[known].to_numpy(np.int64)
    items = items[known].to_numpy(np.int64)
    num_items = vocabulary.num_items
    pairs = np.unique(users * num_items + items)
    seen = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(pairs, np.ones(len(pairs), np.int64)), default_value=0
    )
    user_strings = tf.constant(np.asarray(vocabulary.users, dtype=object))
    item_strings = tf.constant(np.asarray(vocabulary.items, dtype=object))
    logits = tf.math.log(tf.constant([vocabulary.item_counts], tf.float32))

    def draw(n: tf.Tensor, draw_seed: tf.Tensor) -> tf.Tensor:
        if sampler == "popularity":
            return tf.random.stateless_categorical(logits, n, draw_seed, dtype=tf.int64)[0]
        return tf.random.stateless_uniform([n], draw_seed, 0, num_items, dtype=tf.int64)

    def add_negatives(pairs, draw_seeds):
        u, i = pairs
        neg_u = tf.repeat(u, num_negatives)
        n = tf.size(neg_u)
        neg_i = draw(n, draw_seeds[0])
        for attempt in range(1, 8):
            clash = seen.lookup(neg_u * num_items + neg_i) > 0
            neg_i = tf.where(clash, draw(n, draw_seeds[attempt]), neg_i)
        keep = seen.lookup(neg_u * num_items + neg_i) == 0
        all_u = tf.concat([u, tf.boolean_mask(neg_u, keep)], 0)
        all_i = tf.concat([i, tf.boolean_mask(neg_i, keep)], 0)
        label = tf.concat([tf.ones_like(u, tf.float32), tf.zeros(tf.shape(all_u)[0] - tf.shape(u)[0])], 0)
        feats = {USER: tf.gather(user_strings, all_u), ITEM: tf.gather(item_strings, all_i)}
        return feats, label

    ds = shuffled_batches((users, items), len(users), batch_size, seed)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).batch(8)
    ds = tf.data.Dataset.zip((ds, seeds)).map(add_negatives, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def candidates(
    items: pd.DataFrame | None,
    item_ids: Sequence[str],
    *,
    item_features: Sequence[str] = (),
    batch_size: int = 1024,
) -> tf.data.Dataset:
    """A dataset of all candidate items with their features, for indexing and evaluation.

    Args:
        items: The item side table (may be None when no features are asked for).
        item_ids: The candidate ids (e.g. ``vocabulary.items`` or every catalogue item).
        item_features: Item-table columns to include.
        batch_size: Items per batch.

    Returns:
        A dataset of ``{"item_id": string[B], <feature>: ...}``.
    """
    _check_batch(batch_size)
    keys = pd.Series(np.asarray(item_ids, dtype=object))
    columns = {ITEM: keys.to_numpy(dtype=object)}
    columns.update(_side_columns("candidates", items, keys, item_features, "item"))
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
