"""The embedded default dataset: seeded, sized as asked, with structure a model can find."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import tfrec
from tfrec.errors import TfrecError


def test_default_size_and_columns() -> None:
    data = tfrec.datasets.synthetic()
    assert data.num_users == 2000 and data.num_items == 1000
    assert 95_000 <= len(data) <= 105_000
    assert set(data.frame["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert {"title", "genres", "text"} <= set(data.items.columns)
    assert {"age", "gender"} <= set(data.users.columns)
    assert data.frame.groupby("user_id").size().min() >= 5


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = tfrec.datasets.synthetic(num_users=300, num_items=100, num_interactions=3000, seed=3)
    b = tfrec.datasets.synthetic(num_users=300, num_items=100, num_interactions=3000, seed=3)
    c = tfrec.datasets.synthetic(num_users=300, num_items=100, num_interactions=3000, seed=4)
    assert a.frame.equals(b.frame) and a.items.equals(b.items)
    assert not a.frame.equals(c.frame)


def test_planted_structure_shows_in_the_data() -> None:
    data = tfrec.datasets.synthetic(seed=0)
    truth = data.extras["planted"]
    users = data.frame["user_id"].str[1:].astype(int).to_numpy()
    items = data.frame["item_id"].str[1:].astype(int).to_numpy()
    # Chosen items have higher planted affinity than random ones.
    chosen = truth.affinity[users, items].mean()
    rng = np.random.default_rng(0)
    random = truth.affinity[users, rng.integers(0, len(truth.item_ids), len(users))].mean()
    assert chosen > random + 0.5 * truth.affinity.std()
    # Popularity is skewed: the top 10% of items hold far more than 10% of interactions.
    counts = np.sort(data.frame.groupby("item_id").size().to_numpy())[::-1]
    assert counts[: len(counts) // 10].sum() > 0.3 * counts.sum()
    # Ratings follow the planted biases.
    mean_by_user = data.frame.groupby("user_id")["rating"].mean()
    bias = truth.user_bias[mean_by_user.index.str[1:].astype(int)]
    assert np.corrcoef(mean_by_user.to_numpy(), bias)[0, 1] > 0.5
    # An item's text uses the words of its dominant topic.
    item = 0
    topic = int(np.argmax(truth.item_topics[item]))
    words = set(data.items.loc["i0", "text"].split())
    assert len(words & set(truth.topic_words[topic])) >= 3


@pytest.mark.parametrize(
    "kwargs, message",
    [({"num_users": 0}, "num_users must be a positive integer"),
     ({"num_topics": 40}, "num_topics must be <= 16"),
     ({"num_users": 10, "num_items": 10, "num_interactions": 60}, "exceeds half")],
)  # fmt: skip
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(TfrecError, match=message):
        tfrec.datasets.synthetic(**kwargs)


def test_users_drawn_in_chunks_give_the_same_data(monkeypatch) -> None:
    args = {"num_users": 300, "num_items": 100, "num_interactions": 3000, "seed": 5}
    whole = tfrec.datasets.synthetic(**args)
    monkeypatch.setattr(
        importlib.import_module("tfrec.data.synthetic"), "SCORES_PER_CHUNK", 100 * 7
    )  # 7 users per chunk
    chunked = tfrec.datasets.synthetic(**args)
    assert whole.frame.equals(chunked.frame) and whole.items.equals(chunked.items)
