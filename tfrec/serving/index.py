"""An approximate top-k index over a catalogue's embeddings, in stock TensorFlow ops.

An inverted-file index: the item embeddings are clustered by k-means (NumPy, seeded) into
partitions, each stored as a fixed-width row of item indices (0 pads) beside a copy of
those items' vectors in the same order (so a probe reads one contiguous block), and every
request has static shapes a stock server batches. A query scores the partition
centroids, takes the best ``probes`` partitions, scores their items exactly and keeps
the top k. A
partition larger than the fixed width is split into several rows under the same centroid,
so one popular region does not widen every row. ``probes`` is chosen at export as the
fewest that reach a target recall against the exact ranking on a sample of queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfrec._keras import tf
from tfrec.errors import TfrecError


@dataclass(frozen=True)
class Partitions:
    """The index's arrays.

    Attributes:
        centroids: float32 ``[P, d]``, one per row of ``members`` (split partitions repeat
            their centroid).
        members: int64 ``[P, width]``: 1-based item indices of each partition, 0 pads.
    """

    centroids: np.ndarray
    members: np.ndarray

    @property
    def width(self) -> int:
        return int(self.members.shape[1])


def default_partitions(num_items: int) -> int:
    """About ``2 * sqrt(items)`` partitions, a power of two (at least 1)."""
    return max(1, 2 ** round(math.log2(max(1.0, 2 * math.sqrt(num_items)))))


def _nearest(vectors: np.ndarray, centroids: np.ndarray, chunk: int = 16_384) -> np.ndarray:
    """Index of the nearest centroid (squared L2) of each vector, in chunks."""
    squared = np.sum(centroids * centroids, axis=1)
    out = np.empty(len(vectors), np.int64)
    for start in range(0, len(vectors), chunk):
        part = vectors[start : start + chunk]
        out[start : start + chunk] = np.argmin(squared[None, :] - 2.0 * part @ centroids.T, axis=1)
    return out


def build(
    vectors: np.ndarray, partitions: int | None = None, seed: int = 0, iterations: int = 10, sample_per: int = 64
) -> Partitions:
    """Clusters ``vectors`` (row ``i`` is item index ``i + 1``) into an inverted-file index.

    k-means (Lloyd's, ``iterations`` rounds) runs on a seeded sample of ``sample_per``
    vectors per partition; every vector then joins its nearest centroid. Rows are
    ``ceil(1.5 * items / partitions)`` wide; a larger partition is split over several rows.
    """
    vectors = np.ascontiguousarray(vectors, np.float32)
    n = len(vectors)
    if n == 0:
        raise TfrecError("an approximate index needs at least one item")
    count = min(partitions or default_partitions(n), n)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, count * sample_per), replace=False)]
    centroids = sample[rng.choice(len(sample), size=count, replace=False)].copy()
    for _ in range(iterations):
        nearest = _nearest(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, sample)
        sizes = np.bincount(nearest, minlength=count)
        filled = sizes > 0
        centroids[filled] = sums[filled] / sizes[filled, None]
        # An empty partition restarts at a random sample vector.
        centroids[~filled] = sample[rng.choice(len(sample), size=int((~filled).sum()))]
    assigned = _nearest(vectors, centroids)
    width = max(1, math.ceil(1.5 * n / count))
    order = np.argsort(assigned, kind="stable")
    bounds = np.searchsorted(assigned[order], np.arange(count + 1))
    rows, row_centroids = [], []
    for p in range(count):
        items = order[bounds[p] : bounds[p + 1]] + 1
        for start in range(0, len(items), width):
            row = np.zeros(width, np.int64)
            chunk = items[start : start + width]
            row[: len(chunk)] = chunk
            rows.append(row)
            row_centroids.append(centroids[p])
    return Partitions(np.asarray(row_centroids, np.float32), np.asarray(rows, np.int64))


def probe(queries: tf.Tensor, centroids: tf.Tensor, probes: int) -> tf.Tensor:
    """int32 ``[B, probes]``: each query's best partition rows by inner product with their centroids."""
    return tf.math.top_k(tf.matmul(queries, centroids, transpose_b=True), k=probes).indices


def flat(rows: tf.Tensor) -> tf.Tensor:
    """``[B, probes, width, ...]`` as ``[B, probes * width, ...]``."""
    shape = tf.shape(rows)
    return tf.reshape(rows, tf.concat([[shape[0], shape[1] * shape[2]], shape[3:]], axis=0))


def excluded(candidates: tf.Tensor, exclude: tf.Tensor) -> tf.Tensor:
    """bool ``[B, M]``: whether each candidate item index is among its row's ``exclude``
    ``[B, E]`` (0 in ``exclude`` pads), by a sorted search (``M log E`` a row)."""
    ordered = tf.sort(tf.pad(exclude, [[0, 0], [0, 1]]), axis=1)  # a 0 column: never empty
    at = tf.searchsorted(ordered, candidates)
    width = tf.shape(ordered)[1]
    found = tf.gather(ordered, tf.minimum(at, tf.cast(width - 1, at.dtype)), batch_dims=1)
    return (found == candidates) & (candidates > 0)


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact top items that the approximate row holds."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact)]))
