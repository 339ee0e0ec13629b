"""Top-K ranking metrics, vectorized in TensorFlow and chunked over users.

Conventions (the RecBole / Microsoft Recommenders ones):
- each evaluated user's relevant set is their test items; users without test items are
  not evaluated;
- items a user interacted with in training are excluded from their ranking;
- the ranking is by descending score, ties going to the lower catalogue index (what
  ``tf.math.top_k`` does);
- ``precision@K = hits@K / K``; ``recall@K = hits@K / |relevant|``;
  ``ndcg@K = DCG@K / IDCG@K`` with binary gains and IDCG over ``min(|relevant|, K)``;
  ``hit_rate@K`` = at least one hit; ``map@K`` = sum of precision at each hit rank
  ``<= K`` over ``min(|relevant|, K)``; ``mrr`` = 1 / rank of the first relevant item in
  the full ranking; ``coverage@K`` = share of the catalogue in at least one top-K list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tfrec._keras import tf
from tfrec.core.chunks import rows_per_chunk
from tfrec.errors import TfrecError
from tfrec.progress import Progress

METRICS = ("precision", "recall", "ndcg", "hit_rate", "map")


def check_ks(ks: Sequence[int], catalogue_size: int) -> tuple[int, ...]:
    """Validates cut-offs (one int or a sequence of ints): positive, at most the catalogue size."""
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    elif isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence | np.ndarray):
        raise TfrecError(f"k must be a positive integer or a sequence of them, got {ks!r}")
    ks = tuple(ks)
    if not ks or any(not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0 for k in ks):
        raise TfrecError(f"k must be one or more positive integers, got {ks!r}")
    if max(ks) > catalogue_size:
        raise TfrecError(f"k={max(ks)} exceeds the {catalogue_size} candidate items")
    return tuple(sorted({int(k) for k in ks}))


@tf.function(reduce_retracing=True)
def _chunk_metrics(scores, excluded, relevant, kmax: int):
    """Per-user metric parts for one chunk.

    Args:
        scores: float32 [n, m] scores over the catalogue.
        excluded: bool [n, m], items to leave out of the ranking.
        relevant: bool [n, m], the test items.
        kmax: the largest cut-off.

    Returns:
        hits [n, kmax] float32, num_relevant [n] float32, first_rank [n] float32 (1-based
        rank of the first relevant item, inf when none is rankable), top indices [n, kmax].
    """
    neg_inf = tf.constant(-np.inf, tf.float32)
    ranked = tf.where(excluded, neg_inf, scores)
    top = tf.math.top_k(ranked, k=kmax)
    hits = tf.cast(tf.gather(relevant, top.indices, batch_dims=1), tf.float32)
    rankable = tf.logical_and(relevant, tf.logical_not(excluded))
    best = tf.reduce_max(tf.where(rankable, ranked, neg_inf), axis=1, keepdims=True)
    best_index = tf.argmax(tf.where(rankable, ranked, neg_inf), axis=1, output_type=tf.int32)
    columns = tf.range(tf.shape(scores)[1])[None, :]
    live = tf.logical_not(excluded)
    ahead = tf.logical_and(live, ranked > best)
    tied_before = tf.logical_and(live, tf.logical_and(ranked == best, columns < best_index[:, None]))
    rank = 1.0 + tf.reduce_sum(tf.cast(tf.logical_or(ahead, tied_before), tf.float32), axis=1)
    has_rankable = tf.reduce_any(rankable, axis=1)
    first_rank = tf.where(has_rankable, rank, tf.constant(np.inf, tf.float32))
    num_relevant = tf.reduce_sum(tf.cast(relevant, tf.float32), axis=1)
    return hits, num_relevant, first_rank, top.indices


def _per_user(hits: np.ndarray, num_relevant: np.ndarray, first_rank: np.ndarray, ks: Sequence[int]) -> dict:
    """Each user's metrics, ``{name: array over the chunk's users}``."""
    positions = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(positions + 1.0)
    cumulative = np.cumsum(hits, axis=1)
    values: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits[:, :k]
        hit_count = h.sum(axis=1)
        ideal = np.minimum(num_relevant, k).astype(int)
        idcg = np.cumsum(discounts)[np.maximum(ideal, 1) - 1]
        values[f"precision@{k}"] = hit_count / k
        values[f"recall@{k}"] = hit_count / num_relevant
        values[f"ndcg@{k}"] = (h * discounts[:k]).sum(axis=1) / idcg
        values[f"hit_rate@{k}"] = (hit_count > 0).astype(np.float64)
        precision_at = cumulative[:, :k] / positions[:k]
        values[f"map@{k}"] = (precision_at * h).sum(axis=1) / np.maximum(ideal, 1)
    values["mrr"] = np.where(np.isfinite(first_rank), 1.0 / first_rank, 0.0)
    return values


def rank_metrics(
    score_fn: Callable[[np.ndarray], tf.Tensor],
    users: np.ndarray,
    num_items: int,
    excluded_pairs: tuple[np.ndarray, np.ndarray],
    relevant_pairs: tuple[np.ndarray, np.ndarray],
    ks: Sequence[int] = (10, 20),
    *,
    chunk_size: int | None = None,
    per_user: dict | None = None,
) -> dict[str, float]:
    """Full-catalogue top-K metrics, averaged over users with relevant items.

    Args:
        score_fn: Maps an array of user positions (rows of ``users``) to float32 scores
            ``[n, num_items]`` over the catalogue.
        users: The users to evaluate (any ids; only their count and order matter here).
        num_items: Catalogue size.
        excluded_pairs: ``(user_position, item_position)`` arrays to exclude (training items).
        relevant_pairs: ``(user_position, item_position)`` arrays of test items.
        ks: Cut-offs.
        chunk_size: Users scored at once; memory is ``O(chunk_size * num_items)``. By
            default up to 1024, fewer on large catalogues (about 2^25 scores per chunk).
        per_user: A dict to fill with each evaluated user's metrics (``{name: array}``,
            users in ``users`` order), for paired comparisons.

    Returns:
        ``{"precision@K", "recall@K", "ndcg@K", "hit_rate@K", "map@K", "coverage@K", "mrr",
        "users"}``.
    """
    ks = check_ks(ks, num_items)
    kmax = max(ks)
    n_users = len(users)
    chunk_size = chunk_size or rows_per_chunk(num_items)
    rel_u, rel_i = (np.asarray(a, np.int64) for a in relevant_pairs)
    exc_u, exc_i = (np.asarray(a, np.int64) for a in excluded_pairs)
    rel_order, exc_order = np.argsort(rel_u, kind="stable"), np.argsort(exc_u, kind="stable")
    rel_u, rel_i, exc_u, exc_i = rel_u[rel_order], rel_i[rel_order], exc_u[exc_order], exc_i[exc_order]
    evaluated = np.zeros(n_users, bool)
    evaluated[rel_u] = True
    sums: dict[str, float] = {}
    covered = {k: np.zeros(num_items, bool) for k in ks}
    count = 0
    progress = Progress(-(-n_users // chunk_size), "chunks of users", least=4)
    for start in range(0, n_users, chunk_size):
        progress.advance()
        stop = min(start + chunk_size, n_users)
        rows = np.flatnonzero(evaluated[start:stop]) + start
        if len(rows) == 0:
            continue
        local = np.full(n_users, -1, np.int64)
        local[rows] = np.arange(len(rows))
        masks = []
        for pu, pi in ((exc_u, exc_i), (rel_u, rel_i)):
            lo, hi = np.searchsorted(pu, [start, stop])
            keep = local[pu[lo:hi]] >= 0
            index = np.stack([local[pu[lo:hi]][keep], pi[lo:hi][keep]], axis=1)
            masks.append(
                tf.scatter_nd(index, tf.ones(len(index), tf.bool), [len(rows), num_items])
                if len(index)
                else tf.zeros([len(rows), num_items], tf.bool)
            )
        scores = tf.cast(score_fn(rows), tf.float32)
        hits, num_relevant, first_rank, top = _chunk_metrics(scores, masks[0], masks[1], kmax)
        part = _per_user(
            hits.numpy().astype(np.float64), num_relevant.numpy().astype(np.float64),
            first_rank.numpy().astype(np.float64), ks,
        )  # fmt: skip
        for key, value in part.items():
            sums[key] = sums.get(key, 0.0) + float(value.sum())
            if per_user is not None:
                per_user.setdefault(key, []).append(value)
        top = top.numpy()
        for k in ks:
            covered[k][top[:, :k].ravel()] = True
        count += len(rows)
    if count == 0:
        raise TfrecError("no user has a test item to evaluate")
    if per_user is not None:
        for key in list(per_user):
            per_user[key] = np.concatenate(per_user[key])
    metrics = {key: value / count for key, value in sums.items()}
    for k in ks:
        metrics[f"coverage@{k}"] = float(covered[k].mean())
    metrics["users"] = float(count)
    return dict(sorted(metrics.items()))
