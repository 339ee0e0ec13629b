"""The embedded default dataset: generated interactions with planted structure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec.data.interactions import ITEM, RATING, TIMESTAMP, USER, Interactions
from tfrec.errors import TfrecError

_SYLLABLES = ("ka", "lo", "mi", "ru", "te", "sa", "no", "vi", "da", "pe", "zu", "fo", "ri", "ba", "xe", "gu")
_GENRES = ("action", "comedy", "drama", "horror", "romance", "scifi", "mystery", "western",
           "musical", "war", "crime", "fantasy", "animation", "documentary", "thriller", "family")  # fmt: skip


@dataclass(frozen=True)
class PlantedTruth:
    """What generated a synthetic dataset, for tests that check a model recovers it.

    Rows follow ``user_ids`` / ``item_ids``. ``affinity`` is ``user_factors @ item_factors.T``;
    interactions were drawn with probability rising with affinity plus item popularity.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_topics: np.ndarray
    item_topics: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    item_popularity_logit: np.ndarray
    global_mean: float
    topic_words: tuple[tuple[str, ...], ...]

    @property
    def affinity(self) -> np.ndarray:
        """The planted user x item preference (larger is preferred)."""
        return self.user_factors @ self.item_factors.T


# At most this many user-item scores are held at once while drawing interactions.
SCORES_PER_CHUNK = 4_000_000


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise TfrecError(f"synthetic(): {name} must be a positive integer, got {value!r}")


def synthetic(
    num_users: int = 2000,
    num_items: int = 1000,
    num_interactions: int = 100_000,
    *,
    num_topics: int = 8,
    dim: int = 16,
    seed: int = 0,
    preference_strength: float = 3.0,
    popularity_skew: float = 0.8,
) -> Interactions:
    """Generates a seeded dataset with planted preferences, popularity and topic text.

    Users and items get latent factors built from topic mixtures (items mostly about one
    topic), user and item rating biases, and a Zipf-like popularity. Each user's items are
    drawn without replacement with log-probability ``preference_strength * affinity +
    popularity``; ratings 1-5 are ``mean + b_u + b_i + affinity`` plus noise, rounded.
    Each item's text is drawn from its topics' words (plus filler words), so text predicts
    preference. The generating quantities are in ``data.extras["planted"]``
    (:class:`PlantedTruth`).

    Args:
        num_users: Number of users (every user has at least 5 interactions).
        num_items: Number of items.
        num_interactions: Approximate total number of interactions.
        num_topics: Number of latent topics (at most 16).
        dim: Dimension of the latent factors.
        seed: Random seed; the same arguments give the same data.
        preference_strength: How strongly affinity drives what users interact with.
        popularity_skew: Exponent of the Zipf-like item popularity (0 = uniform).

    Returns:
        Interactions with ratings, timestamps, an item table (title, genres, text) and a
        user table (age, gender).

    Raises:
        TfrecError: non-positive sizes, too many topics, or more interactions than
            ``num_users * num_items / 2``.

    Example:
        >>> data = tfrec.datasets.synthetic(num_users=100, num_items=50, num_interactions=2000)
        >>> data.num_users
        100
    """
    _check_positive(num_users=num_users, num_items=num_items, num_interactions=num_interactions,
                    num_topics=num_topics, dim=dim)  # fmt: skip
    if num_topics > len(_GENRES):
        raise TfrecError(f"synthetic(): num_topics must be <= {len(_GENRES)}, got {num_topics}")
    if num_interactions > num_users * num_items // 2:
        raise TfrecError(
            f"synthetic(): num_interactions={num_interactions} exceeds half of "
            f"num_users*num_items={num_users * num_items}"
        )
    rng = np.random.default_rng(seed)

    # === Latent structure ===
    item_topics = rng.dirichlet(np.full(num_topics, 0.15), size=num_items)
    user_topics = rng.dirichlet(np.full(num_topics, 0.4), size=num_users)
    topic_factors = rng.normal(0.0, 1.0, size=(num_topics, dim)) / np.sqrt(dim) * 2.0
    item_factors = item_topics @ topic_factors + rng.normal(0, 0.15, size=(num_items, dim))
    user_factors = user_topics @ topic_factors + rng.normal(0, 0.15, size=(num_users, dim))
    popularity = -popularity_skew * np.log1p(rng.permutation(num_items))
    user_bias = rng.normal(0.0, 0.35, size=num_users)
    item_bias = 0.25 * (popularity - popularity.mean()) / (popularity.std() + 1e-9)
    item_bias = item_bias + rng.normal(0.0, 0.25, size=num_items)

    # === Who interacts with what (Gumbel top-k = sampling without replacement) ===
    activity = rng.lognormal(0.0, 0.8, size=num_users)
    counts = np.maximum(5, np.round(activity / activity.sum() * num_interactions)).astype(int)
    counts = np.minimum(counts, num_items // 2)
    picked, picked_affinity = [], []
    # Users in chunks, so memory stays bounded at any size.
    chunk = max(1, SCORES_PER_CHUNK // num_items)
    for first in range(0, num_users, chunk):
        affinity = user_factors[first : first + chunk] @ item_factors.T
        keys = preference_strength * affinity + popularity[None, :] + rng.gumbel(size=affinity.shape)
        most = int(counts[first : first + chunk].max())
        top = np.argpartition(-keys, most - 1, axis=1)[:, :most]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), axis=1), 1)
        for row, count in enumerate(counts[first : first + chunk]):
            picked.append(top[row, :count])
            picked_affinity.append(affinity[row, top[row, :count]])
    rows = np.repeat(np.arange(num_users), counts)
    cols = np.concatenate(picked)

    # === Ratings and timestamps ===
    global_mean = 3.5
    aff = np.concatenate(picked_affinity)
    aff_scaled = (aff - aff.mean()) / (aff.std() + 1e-9) * 0.6
    raw = global_mean + user_bias[rows] + item_bias[cols] + aff_scaled + rng.normal(0, 0.5, len(rows))
    ratings = np.clip(np.round(raw), 1, 5).astype(np.float32)
    start = 1_600_000_000 + rng.integers(0, 200 * 86_400, size=num_users)
    span = rng.integers(30 * 86_400, 300 * 86_400, size=num_users)
    timestamps = start[rows] + (rng.random(len(rows)) * span[rows]).astype(np.int64)

    user_ids = np.asarray([f"u{i}" for i in range(num_users)], dtype=object)
    item_ids = np.asarray([f"i{i}" for i in range(num_items)], dtype=object)
    frame = pd.DataFrame({USER: user_ids[rows], ITEM: item_ids[cols], RATING: ratings, TIMESTAMP: timestamps})

    # === Item text from topic words ===
    topic_words = tuple(
        tuple("".join(rng.choice(_SYLLABLES, size=3)) + _GENRES[t][:2] for _ in range(30))
        for t in range(num_topics)
    )
    filler = np.asarray(["the", "a", "of", "and", "with", "story", "new", "one", "about", "life"])
    lengths = rng.integers(12, 30, size=num_items)
    texts, genres = [], []
    for i in range(num_items):
        topics = rng.choice(num_topics, size=lengths[i], p=item_topics[i])
        words = [topic_words[t][rng.integers(30)] for t in topics]
        fill = rng.random(lengths[i]) < 0.3
        words = [filler[rng.integers(len(filler))] if f else w for w, f in zip(words, fill)]
        texts.append(" ".join(words))
        genres.append("|".join(_GENRES[t] for t in np.flatnonzero(item_topics[i] > 0.3)))
    items = pd.DataFrame(
        {"item_id": item_ids, "title": [f"Item {i}" for i in range(num_items)], "genres": genres}
    )
    items["text"] = items["title"] + " " + items["genres"].str.replace("|", " ") + " " + texts
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "age": rng.integers(16, 70, size=num_users),
            "gender": rng.choice(np.asarray(["F", "M"]), size=num_users),
        }
    )
    truth = PlantedTruth(
        user_ids=user_ids, item_ids=item_ids, user_factors=user_factors, item_factors=item_factors,
        user_topics=user_topics, item_topics=item_topics, user_bias=user_bias, item_bias=item_bias,
        item_popularity_logit=popularity, global_mean=global_mean, topic_words=topic_words,
    )  # fmt: skip
    return Interactions(frame, items=items, users=users, name="synthetic", extras={"planted": truth})
