"""Splits never leak test pairs into training, and together they are the input."""

from __future__ import annotations

import pandas as pd
import pytest

import tfrec
from tfrec.data import split
from tfrec.errors import DataError, TfrecError

KEY = ["user_id", "item_id", "timestamp"]


def assert_partition(data, parts) -> None:
    train, test = parts.train.frame, parts.test.frame
    assert len(train) > 0 and len(test) > 0
    assert len(train) + len(test) == len(data)
    both = pd.concat([train, test]).sort_values(KEY).reset_index(drop=True)
    assert both.equals(data.frame.sort_values(KEY).reset_index(drop=True))
    overlap = train.merge(test, on=KEY)
    assert overlap.empty


@pytest.mark.parametrize("spec", ["random:0.2", "temporal:0.25", "leave-last-out", "cold-items:0.2"])
def test_splits_partition_without_leakage(small, spec) -> None:
    parts = split(small, spec, seed=3)
    assert parts.spec == spec
    assert_partition(small, parts)


def test_random_split_fraction_and_seed(small) -> None:
    a, b, c = (split(small, "random:0.2", seed=s) for s in (1, 1, 2))
    assert abs(len(a.test) - 0.2 * len(small)) <= 1
    assert a.test.frame.equals(b.test.frame) and not a.test.frame.equals(c.test.frame)


def test_temporal_split_cuts_by_time(small) -> None:
    parts = split(small, "temporal:0.2")
    assert parts.train.frame["timestamp"].max() <= parts.test.frame["timestamp"].min()


def test_leave_last_out_holds_each_users_latest(small) -> None:
    parts = split(small, "leave-last-out")
    test = parts.test.frame.set_index("user_id")["timestamp"]
    latest_train = parts.train.frame.groupby("user_id")["timestamp"].max()
    assert test.index.is_unique and len(test) == small.num_users
    assert (test >= latest_train.loc[test.index]).all()


def test_leave_last_out_keeps_single_interaction_users_in_train() -> None:
    data = tfrec.data.Interactions(pd.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "timestamp": [2, 1, 5]}))  # fmt: skip
    parts = split(data, "leave-last-out")
    assert parts.test.frame[["user_id", "item_id"]].values.tolist() == [["a", "x"]]
    assert sorted(parts.train.frame["user_id"]) == ["a", "b"]


def test_leave_last_out_without_timestamps_is_seeded(citeulike_dir) -> None:
    data = tfrec.datasets.load("citeulike-t", citeulike_dir)
    a, b = split(data, "leave-last-out", seed=0), split(data, "leave-last-out", seed=0)
    assert a.test.frame.equals(b.test.frame)
    assert len(a.test) == (data.frame.groupby("user_id").size() > 1).sum()
    merged = a.train.frame.merge(a.test.frame, on=["user_id", "item_id"])
    assert merged.empty and len(a.train) + len(a.test) == len(data)


def test_cold_items_are_absent_from_training(small) -> None:
    parts = split(small, "cold-items:0.2", seed=0)
    assert set(parts.train.item_ids).isdisjoint(parts.test.item_ids)
    assert abs(parts.test.num_items - 0.2 * small.num_items) <= 1


@pytest.mark.parametrize("fold", ["u1", "u2", "u3", "u4", "u5"])
def test_ml100k_folds(ml100k, fold) -> None:
    parts = split(ml100k, f"fold:{fold}")
    assert (len(parts.train), len(parts.test)) == (80_000, 20_000)
    assert_partition(ml100k, parts)
    assert parts.train.items is ml100k.items


def test_ml100k_ua_fold_has_ten_test_ratings_per_user(ml100k) -> None:
    parts = split(ml100k, "fold:ua")
    assert parts.test.frame.groupby("user_id").size().eq(10).all()
    assert_partition(ml100k, parts)


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("random:1.5", TfrecError, "between 0 and 1"),
        ("random:x", TfrecError, "'x' is not a number"),
        (
            "shuffle",
            TfrecError,
            "allowed forms: random:F, temporal:F, leave-last-out, fold:NAME, cold-items:F",
        ),
        ("fold:u9", TfrecError, "unknown fold 'u9'"),
        ("random:0.00001", DataError, "leaves the test part empty"),
    ],
)
def test_bad_specs(small, spec, error, message) -> None:
    with pytest.raises(error, match=message):
        split(small, spec)


def test_temporal_needs_timestamps() -> None:
    data = tfrec.data.Interactions(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]}))
    with pytest.raises(DataError, match="temporal split needs timestamps"):
        split(data, "temporal:0.5")


def test_a_validation_part_comes_out_of_the_training_part_only() -> None:
    data = tfrec.datasets.synthetic(num_users=100, num_items=60, num_interactions=2000, seed=3)
    plain = split(data, "leave-last-out", seed=1)
    parts = split(data, "leave-last-out", seed=1, validation="random:0.1")
    assert parts.test.frame.equals(plain.test.frame)  # the test part is untouched
    assert len(parts.train) + len(parts.validation) == len(plain.train)
    pair = ["user_id", "item_id"]
    train_pairs = set(map(tuple, parts.train.frame[pair].to_numpy()))
    assert not train_pairs & set(map(tuple, parts.validation.frame[pair].to_numpy()))
    assert parts.validation.name.endswith("/validation") and "validation random:0.1" in parts.spec
    assert split(data, "leave-last-out").validation is None
    with pytest.raises(tfrec.TfrecError, match="bad validation spec 'fold:u1'"):
        split(data, "leave-last-out", validation="fold:u1")
