"""Interactions validates on construction and names the column and rows at fault."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrec.data import Interactions
from tfrec.errors import DataError


def frame(**overrides) -> pd.DataFrame:
    data = {"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"], "rating": [4.0, 3.0, 5.0],
            "timestamp": [10, 20, 30]}  # fmt: skip
    data.update(overrides)
    return pd.DataFrame(data)


def test_normalizes_types() -> None:
    data = Interactions(frame(user_id=[1, 1, 2], item_id=[7.0, 8.0, 7.0], rating=["4", "3", "5"]))
    assert data.frame["user_id"].tolist() == ["1", "1", "2"]
    assert data.frame["item_id"].tolist() == ["7", "8", "7"]
    assert data.frame["rating"].dtype == np.float32
    assert data.frame["timestamp"].dtype == np.int64
    assert (data.num_users, data.num_items, len(data)) == (2, 2, 3)
    assert data.has_ratings and data.has_timestamps


@pytest.mark.parametrize(
    "bad, message",
    [
        (frame().drop(columns=["item_id"]), "missing column(s) ['item_id']"),
        (frame().iloc[:0], "no interactions (the frame has 0 rows)"),
        (frame(user_id=["u1", None, "u2"]), "column 'user_id' has missing ids at rows 1"),
        (frame(item_id=["a", "", "a"]), "column 'item_id' has empty ids at rows 1"),
        (frame(rating=[4.0, np.nan, 5.0]), "column 'rating' has missing values (NaN) at rows 1"),
        (frame(rating=[4.0, "good", 5.0]), "column 'rating' has non-numeric values at rows 1 (first: 'good')"),
        (frame(rating=[np.inf, 3.0, 5.0]), "column 'rating' has infinite values at rows 0"),
        (frame(timestamp=[1.5, 2.0, 3.0]), "column 'timestamp' must hold integers"),
        (frame(item_id=["a", "a", "a"], user_id=["u1", "u1", "u1"], timestamp=[5, 5, 6]),
         "duplicate (user_id, item_id, timestamp) at rows 1"),
        (frame(item_id=[1.5, 2.0, 3.0]), "column 'item_id' holds non-integer floats at rows 0"),
        ([1, 2, 3], "expected a pandas DataFrame, got list"),
    ],
    ids=["missing-column", "empty", "nan-id", "empty-id", "nan-rating", "text-rating", "inf-rating",
         "float-timestamp", "duplicate", "float-id", "not-a-frame"],
)  # fmt: skip
def test_bad_input_is_named(bad, message: str) -> None:
    with pytest.raises(DataError) as err:
        Interactions(bad, name="t")
    assert message in str(err.value)
    assert "Interactions(t)" in str(err.value)


def test_side_tables_are_indexed_and_checked() -> None:
    items = pd.DataFrame({"item_id": [1, 2], "title": ["A", "B"]})
    data = Interactions(frame(item_id=["1", "2", "1"]), items=items)
    assert list(data.items.index) == ["1", "2"]
    with pytest.raises(DataError, match="duplicate 'item_id' at rows 1"):
        Interactions(frame(), items=pd.DataFrame({"item_id": ["a", "a"], "title": ["x", "y"]}))
    with pytest.raises(DataError, match="needs a 'user_id' column or index"):
        Interactions(frame(), users=pd.DataFrame({"age": [3]}))


def test_with_frame_keeps_side_tables() -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]})
    data = Interactions(frame(), items=items, name="x")
    part = data.with_frame(data.frame.iloc[:1], "x/part")
    assert part.items is data.items and len(part) == 1 and part.name == "x/part"
