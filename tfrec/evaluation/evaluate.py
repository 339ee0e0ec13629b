"""``tfrec.evaluate``: one call, one flat dict of metrics, under a named protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.core.chunks import in_batches
from tfrec.data.interactions import ITEM, RATING, USER, Interactions, as_interactions
from tfrec.errors import DataError, TfrecError
from tfrec.evaluation.bootstrap import bootstrap_interval
from tfrec.evaluation.ranking import METRICS, check_ks, rank_metrics
from tfrec.evaluation.rating import error_difference, mae, rmse
from tfrec.models.scoring import Scorer

PROTOCOLS = ("full", "sampled:N", "cold-start")


def parse_protocol(protocol: str) -> tuple[str, int]:
    """``"full"`` -> ("full", 0); ``"sampled:99"`` -> ("sampled", 99); ``"cold-start"``."""
    kind, _, arg = str(protocol).partition(":")
    if kind in ("full", "cold-start") and not arg:
        return kind, 0
    if kind == "sampled" and arg.isdigit() and int(arg) > 0:
        return kind, int(arg)
    raise TfrecError(f"bad protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)} (N a positive integer)")


def check_protocol(
    train: Interactions,
    test: Interactions,
    *,
    task: str,
    k: int | Sequence[int] = (10, 20),
    protocol: str | None = None,
) -> tuple[int, ...]:
    """Checks before training that an evaluation can run on this split; returns the cut-offs.

    What only the data decides is checked here, so ``tfrec train`` fails before it spends
    time training: the cut-offs against the items each protocol ranks, the negatives
    ``sampled:N`` needs for every test user, the cold items ``cold-start`` needs, and
    ratings in the test split for a rating model.

    Raises:
        TfrecError: what cannot work, in one line.
    """
    train, test = as_interactions(train, "train"), as_interactions(test, "test")
    if task == "rating" and not test.has_ratings:
        raise DataError(f"{test.name} has no ratings to evaluate a rating model on")
    if task == "rating" and protocol is None:
        return ()
    kind, n = parse_protocol(protocol or "full")
    catalogue = set(train.frame[ITEM])
    if kind == "full":
        return check_ks(k, len(catalogue))
    if kind == "cold-start":
        cold = set(test.frame[ITEM]) - catalogue
        if not cold:
            raise DataError("cold-start protocol: the test split has no item absent from training")
        return check_ks(k, len(cold))
    frames = [train.frame[[USER, ITEM]], test.frame[[USER, ITEM]]]
    pairs = pd.concat(frames).drop_duplicates()
    known = pairs[pairs[ITEM].isin(catalogue)].groupby(USER)[ITEM].size()
    users = set(test.frame[USER])
    fewest = len(catalogue) - int(known.reindex(sorted(users)).fillna(0).max())
    if fewest < n:
        raise TfrecError(
            f"sampled:{n}: a test user has only {fewest} catalogue items they never interacted with "
            f"to draw negatives from; use sampled:{max(fewest, 1)} or fewer"
        )
    return check_ks(k, n + 1)


def read_ncf_negatives(path: str | Path) -> dict[tuple[str, str], list[str]]:
    """Reads the NCF paper's ``*.test.negative`` file: ``(user,item)\\tneg\\tneg...`` per line.

    Returns:
        ``{(user_id, item_id): [negative item ids]}`` with ids as strings.
    """
    cases: dict[tuple[str, str], list[str]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        head, *negatives = line.split("\t")
        try:
            user, item = head.strip().strip("()").split(",")
        except ValueError as err:
            raise DataError(f"{path}: line {number} does not start with '(user,item)'") from err
        cases[(user.strip(), item.strip())] = [n.strip() for n in negatives if n.strip()]
    if not cases:
        raise DataError(f"{path}: no test cases")
    return cases


def _positions(ids: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Position of each id in ``vocabulary``, -1 where absent."""
    index = {v: i for i, v in enumerate(vocabulary)}
    return np.fromiter((index.get(i, -1) for i in ids), np.int64, len(ids))


def _embed_items(model, item_ids: Sequence[str]) -> tf.Tensor:
    return in_batches(model.candidate_embedding, np.asarray(item_ids, dtype=object))


def _predicted_ratings(model, test: Interactions, batch_size: int) -> np.ndarray:
    if not test.has_ratings:
        raise DataError(f"{test.name} has no ratings to evaluate a rating model on")
    frame = test.frame
    return np.concatenate(
        [
            model.score(
                frame[USER].to_numpy()[s : s + batch_size], frame[ITEM].to_numpy()[s : s + batch_size]
            )
            for s in range(0, len(frame), batch_size)
        ]
    )


def _rating_metrics(model, test: Interactions, batch_size: int) -> dict[str, float]:
    predicted = _predicted_ratings(model, test, batch_size)
    return {"rmse": rmse(test.frame[RATING], predicted), "mae": mae(test.frame[RATING], predicted)}


def _full(model, exclude, test, ks, catalogue, chunk_size, per_user: dict | None = None) -> dict[str, float]:
    """Ranks ``catalogue`` for every test user, leaving out the pairs in frame ``exclude``."""
    users = np.asarray(sorted(set(test.frame[USER])), dtype=object)
    user_pos = {u: i for i, u in enumerate(users)}
    candidates = _embed_items(model, catalogue)

    def pairs(frame):
        items = _positions(frame[ITEM].to_numpy(), catalogue)
        rows = frame[USER].map(user_pos).to_numpy()
        keep = (items >= 0) & ~np.isnan(rows.astype(float))
        return rows[keep].astype(np.int64), items[keep]

    relevant = pairs(test.frame)
    # Test items outside the catalogue (cold items) cannot be ranked but still count as relevant.
    missing = test.frame[_positions(test.frame[ITEM].to_numpy(), catalogue) < 0]
    excluded = pairs(exclude[exclude[USER].isin(user_pos)])

    def score(rows):
        queries = model.query_embedding(tf.constant(users[rows]))
        return model.score_all(queries, candidates)

    if len(missing):
        return _with_unrankable(
            score, users, len(catalogue), excluded, relevant, missing, user_pos, ks, chunk_size, per_user
        )
    return rank_metrics(
        score, users, len(catalogue), excluded, relevant, ks, chunk_size=chunk_size, per_user=per_user
    )


def _with_unrankable(
    score, users, num_items, excluded, relevant, missing, user_pos, ks, chunk_size, per_user=None
):
    """Adds test items outside the catalogue as relevant-but-unreachable extra columns."""
    rows = missing[USER].map(user_pos).to_numpy().astype(np.int64)
    extra = np.arange(len(rows)) + num_items
    relevant = (np.concatenate([relevant[0], rows]), np.concatenate([relevant[1], extra]))
    excluded = (np.concatenate([excluded[0], rows]), np.concatenate([excluded[1], extra]))
    width = num_items + len(rows)

    def padded(chunk):
        scores = score(chunk)
        return tf.pad(scores, [[0, 0], [0, width - num_items]])

    metrics = rank_metrics(
        padded, users, width, excluded, relevant, ks, chunk_size=chunk_size, per_user=per_user
    )
    for k in ks:  # coverage is over the real catalogue only
        metrics[f"coverage@{k}"] *= width / num_items
    return metrics


def _sampled(model, train, test, ks, catalogue, n_negatives, seed, negatives, chunk_size) -> dict[str, float]:
    frame = test.frame
    if negatives is not None:
        cases = [(u, i, negs) for (u, i), negs in negatives.items()]
    else:
        rng = np.random.default_rng(seed)
        seen = {}
        for part in (train.frame, test.frame):
            for user, group in part.groupby(USER)[ITEM]:
                seen.setdefault(user, set()).update(group)
        catalogue_array = np.asarray(catalogue, dtype=object)
        catalogue_set = set(catalogue)
        cases = []
        for user, item in zip(frame[USER].to_numpy(), frame[ITEM].to_numpy()):
            allowed = len(catalogue_set) - len(seen[user] & catalogue_set)
            if allowed < n_negatives:
                raise TfrecError(
                    f"sampled:{n_negatives}: user {user!r} has only {allowed} items to sample negatives from"
                )
            negs: dict[str, None] = {}  # insertion-ordered set
            while len(negs) < n_negatives:
                for drawn in catalogue_array[rng.integers(0, len(catalogue_array), 2 * n_negatives)]:
                    if drawn not in seen[user]:
                        negs[drawn] = None
            cases.append((user, item, list(negs)[:n_negatives]))
    width = 1 + max(len(c[2]) for c in cases)
    if any(len(c[2]) != width - 1 for c in cases):
        raise DataError("every sampled test case needs the same number of negatives")
    check_ks(ks, width)
    rng = np.random.default_rng(seed + 1)
    slots = rng.integers(0, width, len(cases))  # the test item's column: ties fall at random
    grid = np.empty((len(cases), width), dtype=object)
    for row, (_, item, negs) in enumerate(cases):
        others = iter(negs)
        grid[row] = [item if col == slots[row] else next(others) for col in range(width)]
    case_users = np.asarray([c[0] for c in cases], dtype=object)

    def score(rows):
        queries = model.query_embedding(tf.constant(case_users[rows]))
        items = _embed_items(model, grid[rows].ravel())
        items = tf.reshape(items, [len(rows), width, -1])
        return model.score_cases(queries, items)

    no_pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    relevant = (np.arange(len(cases)), slots.astype(np.int64))
    metrics = rank_metrics(score, case_users, width, no_pairs, relevant, ks, chunk_size=chunk_size)
    return {k: v for k, v in metrics.items() if not k.startswith("coverage@")}


def evaluate(
    model,
    train: Interactions,
    test: Interactions,
    *,
    k: int | Sequence[int] = (10, 20),
    protocol: str | None = None,
    seed: int = 0,
    negatives: dict[tuple[str, str], list[str]] | None = None,
    chunk_size: int | None = None,
    batch_size: int = 8192,
) -> dict[str, float]:
    """Evaluates a trained model on a test split.

    Rating models report ``rmse`` and ``mae``, plus top-K metrics when a ``protocol`` is
    given. Retrieval and ranking models report top-K metrics under ``full`` by default.

    Protocols:
        ``full``: every user with test items ranks the whole catalogue (the training
        vocabulary) with their training items excluded. Test items outside the catalogue
        count as relevant but cannot be retrieved.
        ``sampled:N``: each test interaction ranks its item against N items the user
        never interacted with (seeded; N=99 is the NCF paper's protocol), or against the
        ``negatives`` read by :func:`read_ncf_negatives`.
        ``cold-start``: users rank only the items absent from training (content models).

    Args:
        model: A trained tfrec model.
        train: The training split (Interactions or a DataFrame).
        test: The test split (Interactions or a DataFrame).
        k: Cut-off(s) for top-K metrics: an int or a sequence of ints.
        protocol: ``full``, ``sampled:N`` or ``cold-start``.
        seed: Seed for sampled negatives.
        negatives: Fixed negatives per (user, item), e.g. from an NCF ``.test.negative`` file.
        chunk_size: Users ranked at once (bounds memory); by default up to 1024, fewer
            on large catalogues so that a chunk holds about 2^25 scores.
        batch_size: Pairs scored at once for rating metrics.

    Returns:
        A flat dict: ``rmse``, ``mae``, ``precision@K``, ``recall@K``, ``ndcg@K``,
        ``hit_rate@K``, ``map@K``, ``coverage@K``, ``mrr`` and ``users`` (the number of
        evaluated users or test cases), as applicable.

    Example:
        >>> tfrec.evaluate(model, split.train, split.test, protocol="sampled:99", k=[10])
    """
    train, test = as_interactions(train, "train"), as_interactions(test, "test")
    if not isinstance(model, Scorer):
        raise TfrecError(
            f"evaluate(): {type(model).__name__} is not a tfrec model or tfrec.models.Scorer; "
            "it needs query_embedding, candidate_embedding and item_vocabulary"
        )
    task = model.task
    if negatives is None:
        k = check_protocol(train, test, task=task, k=k, protocol=protocol) or k
    elif isinstance(k, (int, np.integer)):
        k = (int(k),)
    metrics: dict[str, float] = {}
    if task == "rating":
        metrics.update(_rating_metrics(model, test, batch_size))
        if protocol is None:
            return metrics
    kind, n = parse_protocol(protocol or "full")
    catalogue = list(model.item_vocabulary)
    if kind == "full":
        metrics.update(_full(model, train.frame, test, k, catalogue, chunk_size))
    elif kind == "sampled":
        metrics.update(_sampled(model, train, test, k, catalogue, n, seed, negatives, chunk_size))
    else:
        cold = sorted(set(test.frame[ITEM]) - set(train.frame[ITEM]))
        if not cold:
            raise DataError("cold-start protocol: the test split has no item absent from training")
        metrics.update(_full(model, train.frame.iloc[:0], test, k, cold, chunk_size))
    return metrics


def compare(
    a,
    b,
    train: Interactions,
    test: Interactions,
    *,
    metric: str = "recall@10",
    samples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    protocol: str = "full",
) -> dict[str, float | str]:
    """Model ``a`` against model ``b`` on one metric, with a paired bootstrap interval.

    Ranking metrics: both rank the same catalogue for the same test users (``full``: the
    training catalogue, training items left out; ``cold-start``: only the test items
    absent from training); each user's metric difference is resampled ``samples`` times.
    Rating error (``rmse``, ``mae``; rating models): both predict every test rating and
    the ratings are resampled (see :func:`tfrec.evaluation.error_difference`). The verdict
    is ``better`` (``a`` ahead: a higher metric, or a lower error), ``worse`` or ``tie``.

    Args:
        a, b: Scorers (tfrec models, ``Popularity``, peer adapters) with the same catalogue.
        train, test: The split both were evaluated on.
        metric: A per-user metric of the full protocol (``recall@10``, ``ndcg@20``,
            ``mrr``...), or ``rmse`` / ``mae``.
        samples: Bootstrap resamples.
        level: Interval coverage.
        seed: Seed of the resampling.
        protocol: ``full`` or ``cold-start``.

    Returns:
        ``{"metric", "a", "b", "difference", "low", "high", "level", "users", "verdict"}``
        (``ratings`` instead of ``users`` for rating error).

    Raises:
        TfrecError: a metric the full protocol does not give per user, or different
            catalogues. Test items outside the catalogue count as relevant and unreachable,
            as in ``evaluate``.

    Example:
        >>> tfrec.evaluation.compare(model, tfrec.evaluation.Popularity(split.train), split.train, split.test)
    """
    train, test = as_interactions(train, "train"), as_interactions(test, "test")
    if metric in ("rmse", "mae"):
        if a.task != "rating" or b.task != "rating":
            raise TfrecError(f"compare(): {metric} compares two rating models, got {a.task} and {b.task}")
        a_pred, b_pred = (_predicted_ratings(m, test, 8192) for m in (a, b))
        return error_difference(
            test.frame[RATING], a_pred, b_pred, metric=metric, samples=samples, level=level, seed=seed
        )
    if protocol == "full" and list(a.item_vocabulary) != list(b.item_vocabulary):
        raise TfrecError("compare(): the two models rank different catalogues")
    first, second = (_per_user_values("compare()", m, train, test, metric, protocol) for m in (a, b))
    low, high = bootstrap_interval([first - second], lambda d: d, samples=samples, level=level, seed=seed)
    return {
        "metric": metric,
        "a": float(first.mean()),
        "b": float(second.mean()),
        "difference": float((first - second).mean()),
        "low": low,
        "high": high,
        "level": level,
        "users": len(first),
        "verdict": "better" if low > 0 else "worse" if high < 0 else "tie",
    }


def _per_user_values(caller: str, model, train: Interactions, test: Interactions, metric: str, protocol: str):
    """One full-ranking metric per test user (sorted by user id)."""
    if protocol not in ("full", "cold-start"):
        raise TfrecError(f"{caller}: protocol must be 'full' or 'cold-start', got {protocol!r}")
    name, _, cut = metric.partition("@")
    if name not in (*METRICS, "mrr") or (name != "mrr") != bool(cut) or (cut and not cut.isdigit()):
        raise TfrecError(f"{caller}: metric must be one of {list(METRICS)} with @K, mrr, rmse or mae; got {metric!r}")
    if protocol == "cold-start":
        catalogue = sorted(set(test.frame[ITEM]) - set(train.frame[ITEM]))
        if not catalogue:
            raise DataError("cold-start protocol: the test split has no item absent from training")
        exclude = train.frame.iloc[:0]
    else:
        catalogue, exclude = list(model.item_vocabulary), train.frame
    per_user: dict = {}
    _full(model, exclude, test, (int(cut) if cut else 10,), catalogue, None, per_user=per_user)
    return per_user[metric]


def interval(
    model,
    train: Interactions,
    test: Interactions,
    *,
    metric: str = "recall@10",
    samples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    protocol: str = "full",
) -> dict[str, float | str]:
    """One model's metric with a bootstrap interval: over users for a full-ranking
    metric, over ratings for ``rmse`` / ``mae``.

    Use it to say whether a figure clears a bar (``low`` above it) rather than reading a
    point estimate; the protocols are those of :func:`compare`.

    Args:
        model: A trained tfrec model (or any Scorer).
        train, test: The split it was trained and is evaluated on.
        metric: ``recall@10``, ``ndcg@20``, ``mrr``..., or ``rmse`` / ``mae`` (rating models).
        samples: Bootstrap resamples.
        level: Interval coverage.
        seed: Seed of the resampling.
        protocol: ``full`` or ``cold-start`` (ranking metrics).

    Returns:
        ``{"metric", "value", "low", "high", "level", "users"}`` (``ratings`` instead of
        ``users`` for rating error).

    Example:
        >>> tfrec.evaluation.interval(model, split.train, split.test, metric="recall@10")
    """
    train, test = as_interactions(train, "train"), as_interactions(test, "test")
    if metric in ("rmse", "mae"):
        if model.task != "rating":
            raise TfrecError(f"interval(): {metric} needs a rating model, got a {model.task} model")
        error = _predicted_ratings(model, test, 8192) - test.frame[RATING].to_numpy(np.float64)
        error = error**2 if metric == "rmse" else np.abs(error)
        finish = np.sqrt if metric == "rmse" else (lambda x: x)
        low, high = bootstrap_interval([error], finish, samples=samples, level=level, seed=seed)
        return {"metric": metric, "value": float(finish(error.mean())), "low": low, "high": high,
                "level": level, "ratings": len(error)}  # fmt: skip
    values = _per_user_values("interval()", model, train, test, metric, protocol)
    low, high = bootstrap_interval([values], lambda v: v, samples=samples, level=level, seed=seed)
    return {"metric": metric, "value": float(values.mean()), "low": low, "high": high, "level": level,
            "users": len(values)}  # fmt: skip


def baseline(
    train: Interactions,
    test: Interactions,
    *,
    task: str,
    k: int | Sequence[int] = (10, 20),
    protocol: str | None = None,
    seed: int = 0,
) -> tuple[str, dict[str, float]]:
    """The no-learning baseline to read a model's figures against, on the same split,
    protocol and ``k``: the global mean rating (``rmse``, ``mae``) for a rating task, and
    popularity (:class:`~tfrec.evaluation.Popularity`) for the top-K metrics.

    Returns:
        ``(what, metrics)``: a label (``"global mean rating 3.53"``, ``"popularity"``) and
        the figures under the keys :func:`evaluate` gives the model.
    """
    from tfrec.evaluation.baselines import Popularity

    train, test = as_interactions(train, "train"), as_interactions(test, "test")
    figures: dict[str, float] = {}
    names = []
    if task == "rating":
        mean = float(train.frame[RATING].mean())
        truth = test.frame[RATING].to_numpy(np.float64)
        guess = np.full_like(truth, mean)
        figures.update(rmse=rmse(truth, guess), mae=mae(truth, guess))
        names.append(f"global mean rating {mean:.2f}")
    if task != "rating" or protocol is not None:
        figures.update(evaluate(Popularity(train), train, test, k=k, protocol=protocol, seed=seed))
        names.append("popularity")
    return " + ".join(names), figures
