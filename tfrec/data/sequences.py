"""Each user's items in time order: what sequence models train on and read at serving.

Order is the timestamp, ties in the order the rows appear (the rule ``leave-last-out``
uses), so the item a leave-last-out split holds out is exactly the next item after a
training sequence. Item indices are 1-based positions in the model's item vocabulary;
0 pads (and stands for an item outside the vocabulary, which is dropped).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.data.interactions import ITEM, TIMESTAMP, USER, Interactions
from tfrec.errors import DataError


def ordered(train: Interactions, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(user ids, item ids)`` of every row, sorted by user, then time (ties: row order).

    Raises:
        DataError: the data has no timestamps (``what`` names who needs them).
    """
    if not train.has_timestamps:
        raise DataError(
            f"{what} needs timestamps to order each user's items; {train.name} has no {TIMESTAMP!r} column"
        )
    frame = train.frame
    users = pd.factorize(frame[USER])[0]
    order = np.lexsort((np.arange(len(frame)), frame[TIMESTAMP].to_numpy(), users))
    return frame[USER].to_numpy()[order], frame[ITEM].to_numpy()[order]


def user_runs(train: Interactions, items, what: str) -> Iterator[tuple[str, np.ndarray]]:
    """``(user id, items)`` per user: their training items in time order, as 1-based
    indices into ``items`` (items outside it are dropped)."""
    user_ids, item_ids = ordered(train, what)
    item_position = {item: position + 1 for position, item in enumerate(items)}
    indices = np.asarray([item_position.get(i, 0) for i in item_ids], np.int64)
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(user_ids)]):
        row = indices[start:end]
        yield user_ids[start], row[row > 0]


def user_sequences(train: Interactions, users, items, length: int, what: str) -> list[list[int]]:
    """Per user of ``users`` (vocabulary order), their last ``length`` training items in
    time order, as 1-based indices into ``items`` (items outside it are dropped)."""
    last = {user: row[-length:].tolist() for user, row in user_runs(train, items, what)}
    return [last.get(user, []) for user in users]


def training_windows(train: Interactions, items, length: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Every user's time-ordered training items cut into windows of ``length + 1``, counted
    back from their latest item (so every item but each user's first is a target once):
    ``(inputs, targets)``, int64 ``[windows, length]``, right-aligned (0 pads on the left),
    ``targets`` the inputs shifted one step ahead. Nothing outside ``train`` enters."""
    inputs, targets = [], []
    for _, row in user_runs(train, items, what):
        for stop in range(len(row), 1, -length):
            window = row[max(0, stop - length - 1) : stop]
            padded = np.zeros(length + 1, np.int64)
            padded[length + 1 - len(window) :] = window
            inputs.append(padded[:-1])
            targets.append(np.where(padded[:-1] > 0, padded[1:], 0))  # no target without an input
    if not inputs:
        raise DataError(f"{what}: no user has two training items in order; nothing to learn a next item from")
    return np.stack(inputs), np.stack(targets)


def right_aligned(items: tf.Tensor, length: int) -> tf.Tensor:
    """Left-aligned sequences ``[B, L']`` (0 pads after the items, as a client sends them)
    as right-aligned ``[B, length]`` (the latest item last; older items cut, 0 pads on the
    left)."""
    items = tf.cast(items, tf.int64)
    counts = tf.reduce_sum(tf.cast(items > 0, tf.int32), axis=1)
    # Each row's items in order, interior pads (unknown ids) dropped, pads after them.
    order = tf.argsort(tf.cast(items > 0, tf.int32), axis=1, direction="DESCENDING", stable=True)
    packed = tf.gather(items, order, batch_dims=1)
    source = counts[:, None] - length + tf.range(length)[None, :]  # the last `length` items
    taken = tf.gather(packed, tf.maximum(source, 0), batch_dims=1)
    return tf.where(source >= 0, taken, tf.zeros_like(taken))


def window_dataset(inputs: np.ndarray, targets: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """``{"inputs", "targets"}`` batches of training windows, reshuffled each epoch."""
    data = tf.data.Dataset.from_tensor_slices({"inputs": inputs, "targets": targets})
    data = data.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
