"""tf.data pipelines: element specs, side features, negatives, candidates, vocabularies."""

from __future__ import annotations

import numpy as np
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import Vocabulary, candidates, split, to_dataset, with_negatives
from tfrec.errors import DataError, TfrecError


def test_rating_dataset_element_spec(small) -> None:
    ds = to_dataset(small, label="rating", batch_size=32, item_features=["genres", "text"],
                    user_features=["age", "gender"])  # fmt: skip
    features, label = ds.element_spec
    assert set(features) == {"user_id", "item_id", "genres", "text", "age", "gender"}
    for name in ("user_id", "item_id", "genres", "text", "gender"):
        assert features[name].dtype == tf.string and features[name].shape.as_list() == [None]
    assert features["age"].dtype == tf.float32
    assert label.dtype == tf.float32
    batch, ratings = next(iter(ds))
    assert batch["user_id"].shape == (32,) and ratings.shape == (32,)
    row = small.frame.set_index(["user_id", "item_id"])
    u, i = batch["user_id"][0].numpy().decode(), batch["item_id"][0].numpy().decode()
    assert ratings[0].numpy() == np.ravel(row.loc[(u, i), "rating"])[0]
    assert batch["text"][0].numpy().decode() == small.items.loc[i, "text"]


def test_dataset_covers_every_interaction_once_and_reshuffles(small) -> None:
    ds = to_dataset(small, batch_size=500, seed=1)
    epochs = [np.concatenate([b["item_id"].numpy() for b in ds]) for _ in range(2)]
    assert len(epochs[0]) == len(small)
    assert sorted(epochs[0]) == sorted(small.frame["item_id"].str.encode("utf-8"))
    assert not np.array_equal(epochs[0], epochs[1])
    again = np.concatenate([b["item_id"].numpy() for b in to_dataset(small, batch_size=500, seed=1)])
    assert np.array_equal(epochs[0], again)


def test_shuffled_batches_know_their_count_and_can_drop_the_remainder(small) -> None:
    n = len(small)
    kept = to_dataset(small, batch_size=64, drop_remainder=True)
    assert int(kept.cardinality()) == n // 64
    assert {int(b["user_id"].shape[0]) for b in kept} == {64}
    assert int(to_dataset(small, batch_size=64).cardinality()) == -(-n // 64)
    labelled = to_dataset(small, label="rating", batch_size=n)
    features, ratings = next(iter(labelled))  # the labels travel with their rows
    by_pair = small.frame.set_index(["user_id", "item_id"])["rating"].groupby(level=[0, 1]).first()
    pairs = zip(features["user_id"].numpy().astype(str), features["item_id"].numpy().astype(str))
    assert np.array_equal(ratings.numpy(), [by_pair[p] for p in pairs])


def test_label_and_feature_errors(small) -> None:
    implicit = small.with_frame(small.frame.drop(columns=["rating"]))
    with pytest.raises(DataError, match="has no ratings"):
        to_dataset(implicit, label="rating")
    with pytest.raises(DataError, match=r"item table lacks \['budget'\]"):
        to_dataset(small, item_features=["budget"])
    with pytest.raises(TfrecError, match="batch_size must be a positive integer"):
        to_dataset(small, batch_size=0)


def test_vocabulary_from_training_only(small) -> None:
    parts = split(small, "cold-items:0.2")
    vocab = Vocabulary.from_interactions(parts.train)
    assert set(vocab.items) == set(parts.train.item_ids)
    assert set(vocab.items).isdisjoint(parts.test.item_ids)
    assert list(vocab.item_counts) == sorted(vocab.item_counts, reverse=True)
    counts = parts.train.frame.groupby("item_id").size()
    assert vocab.item_counts[0] == counts.max() and counts[vocab.items[0]] == counts.max()


@pytest.mark.parametrize("sampler", ["uniform", "popularity"])
def test_negatives_are_unseen_and_fresh_each_epoch(small, sampler) -> None:
    vocab = Vocabulary.from_interactions(small)
    ds = with_negatives(small, vocab, num_negatives=4, sampler=sampler, batch_size=1000, seed=5)
    seen = set(zip(small.frame["user_id"], small.frame["item_id"]))
    epochs = []
    for _ in range(2):
        pairs, labels = [], []
        for features, label in ds:
            pairs += list(zip((u.decode() for u in features["user_id"].numpy()),
                              (i.decode() for i in features["item_id"].numpy())))  # fmt: skip
            labels.append(label.numpy())
        labels = np.concatenate(labels)
        positives = [p for p, y in zip(pairs, labels) if y == 1]
        negatives = [p for p, y in zip(pairs, labels) if y == 0]
        assert sorted(positives) == sorted(seen)
        assert not set(negatives) & seen
        # Collisions surviving the redraws are dropped; popular items collide more often.
        assert len(negatives) > (3.9 if sampler == "uniform" else 3.5) * len(positives)
        epochs.append(negatives)
    assert sorted(epochs[0]) != sorted(epochs[1])
    replay = [p for f, y in with_negatives(small, vocab, num_negatives=4, sampler=sampler, batch_size=1000, seed=5)
              for p, yy in zip(zip(f["user_id"].numpy(), f["item_id"].numpy()), y.numpy()) if yy == 0]  # fmt: skip
    assert [(u.decode(), i.decode()) for u, i in replay] == epochs[0]


def test_popularity_sampler_prefers_popular_items(small) -> None:
    vocab = Vocabulary.from_interactions(small)
    ds = with_negatives(small, vocab, num_negatives=8, sampler="popularity", batch_size=5000, seed=0)
    negatives = np.concatenate([f["item_id"].numpy()[y.numpy() == 0] for f, y in ds])
    top = {v.encode() for v in vocab.items[:10]}
    bottom = {v.encode() for v in vocab.items[-10:]}
    # Counts differ ~10x between the groups; collisions with positives thin the top group.
    assert sum(n in top for n in negatives) > 2 * max(1, sum(n in bottom for n in negatives))


def test_candidates_dataset(small) -> None:
    ds = candidates(small.items, list(small.items.index), item_features=["text"], batch_size=50)
    rows = [(i.decode(), t.decode()) for b in ds for i, t in zip(b["item_id"].numpy(), b["text"].numpy())]
    assert len(rows) == len(small.items)
    assert dict(rows)["i3"] == small.items.loc["i3", "text"]


def test_negative_sampling_argument_errors(small) -> None:
    vocab = Vocabulary.from_interactions(small)
    with pytest.raises(TfrecError, match="sampler must be one of"):
        with_negatives(small, vocab, sampler="hard")
    with pytest.raises(TfrecError, match="num_negatives must be a non-negative integer"):
        with_negatives(small, vocab, num_negatives=-1)
    stranger = tfrec.datasets.synthetic(num_users=20, num_items=20, num_interactions=100, seed=9)
    stranger = stranger.with_frame(stranger.frame.assign(user_id="nobody" + stranger.frame["user_id"]))
    with pytest.raises(DataError, match="no interaction has both user and item in the vocabulary"):
        with_negatives(stranger, vocab)
