"""Chunked scoring and top-k: the one implementation models, evaluation and serving use.

A catalogue is ranked a chunk of rows (users or items) at a time, each chunk's score
matrix holding about ``SCORES_PER_CHUNK`` floats, so memory stays bounded on a 1M-item
catalogue however many rows are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from tfrec._keras import tf
from tfrec.progress import Progress

# Scores held at once when ranking a catalogue (~128 MiB of float32).
SCORES_PER_CHUNK = 1 << 25


def rows_per_chunk(num_items: int, most: int = 1024) -> int:
    """Rows (users or items) to score at once against ``num_items`` candidates."""
    return int(max(1, min(most, SCORES_PER_CHUNK // max(num_items, 1))))


def in_batches(fn: Callable[[tf.Tensor], tf.Tensor], values: Sequence | np.ndarray, size: int = 65_536):
    """``fn`` over consecutive batches of ``values`` (converted to tensors), concatenated on axis 0."""
    values = np.asarray(values)
    return tf.concat([fn(tf.constant(values[s : s + size])) for s in range(0, max(len(values), 1), size)], 0)


def mask_out(scores: tf.Tensor, positions: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Sets ``scores[b, positions[b, j]]`` to -inf where ``valid[b, j]`` (numeric ops only)."""
    positions = tf.cast(tf.maximum(positions, 0), tf.int32)
    rows = tf.broadcast_to(tf.range(tf.shape(positions)[0])[:, None], tf.shape(positions))
    indices = tf.stack([tf.reshape(rows, [-1]), tf.reshape(positions, [-1])], axis=1)
    updates = tf.where(tf.reshape(valid, [-1]), -np.inf, np.inf)
    return tf.tensor_scatter_nd_min(scores, indices, tf.cast(updates, scores.dtype))


def top_k_grouped(scores: tf.Tensor, k: int, grouped_from: int = 1 << 16) -> tuple[tf.Tensor, tf.Tensor]:
    """``tf.math.top_k(scores, k)`` over rows of a static width, sorting far fewer scores.

    XLA compiles a top-k into a sort of the whole row. Here the row is cut into groups of
    about ``sqrt(width / k)`` columns; only the ``k`` groups with the largest maxima can
    hold the top ``k`` (a score outside them is at most the ``k``-th group maximum), so
    the group maxima and those ``k`` groups are sorted instead: about
    ``2 * sqrt(k * width)`` scores a row instead of ``width``. Rows narrower than
    ``grouped_from`` use ``tf.math.top_k`` itself (the gathers cost more than they save
    there). The same values and columns as ``tf.math.top_k``, except which of several
    scores equal to the ``k``-th are returned (numeric ops only).

    Returns:
        ``(values float32[B, k], columns int32[B, k])``.
    """
    width = int(scores.shape[1])
    size = max(1, round(math.sqrt(width / k)))
    groups = -(-width // size)
    if groups <= k or width < grouped_from:
        top = tf.math.top_k(scores, k=k)
        return top.values, top.indices
    padded = tf.pad(scores, [[0, 0], [0, groups * size - width]], constant_values=-np.inf)
    grid = tf.reshape(padded, [-1, groups, size])
    # The kept groups in column order, so that equal scores go to the lower column as in top_k.
    kept = tf.sort(tf.math.top_k(tf.reduce_max(grid, axis=2), k=k).indices, axis=1)
    top = tf.math.top_k(tf.reshape(tf.gather(grid, kept, batch_dims=1), [-1, k * size]), k=k)
    columns = tf.gather(kept, top.indices // size, batch_dims=1) * size + top.indices % size
    return top.values, tf.minimum(columns, width - 1)


def top_k_chunked(
    score_rows: Callable[[np.ndarray], tf.Tensor],
    num_rows: int,
    catalogue: np.ndarray,
    k: int,
    left_out: Callable[[int], Sequence[int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``score_rows(rows) -> [len(rows), num_items]``, chunk by chunk.

    ``left_out(row)`` lists catalogue positions to leave out of that row's ranking.
    Returns ``(catalogue ids [num_rows, k], scores [num_rows, k])``. Where fewer than
    ``k`` items are left after leaving some out, the row ends in ``""`` ids with score
    ``-inf``: a left-out item is never returned.
    """
    step = rows_per_chunk(len(catalogue))
    ids, values = [], []
    progress = Progress(-(-num_rows // step), "chunks", least=4)
    for start in range(0, max(num_rows, 1), step):
        progress.advance()
        rows = np.arange(start, min(start + step, num_rows))
        lists = [np.asarray(left_out(row), np.int64) for row in rows]
        width = max((len(x) for x in lists), default=0)
        positions = np.zeros((len(rows), max(width, 1)), np.int64)
        valid = np.zeros_like(positions, dtype=bool)
        for local, items in enumerate(lists):
            positions[local, : len(items)], valid[local, : len(items)] = items, True
        scores = tf.reshape(tf.cast(score_rows(rows), tf.float32), [len(rows), len(catalogue)])
        top = tf.math.top_k(mask_out(scores, tf.constant(positions), tf.constant(valid)), k=k)
        ids.append(top.indices.numpy())
        values.append(top.values.numpy())
    values = np.concatenate(values)
    found = catalogue[np.concatenate(ids)]
    found[values == -np.inf] = ""
    return found, values
