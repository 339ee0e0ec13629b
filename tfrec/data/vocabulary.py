"""Vocabularies of user and item ids, built from the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec.data.interactions import ITEM, USER, Interactions


@dataclass(frozen=True)
class Vocabulary:
    """The ids a model knows, most frequent first (ties by id), from training data only.

    Ids outside the vocabulary (new users, cold items, test-only ids) go to the models'
    out-of-vocabulary bucket.

    Attributes:
        users: User ids, most active first.
        items: Item ids, most popular first.
        item_counts: Training interactions per item, aligned with ``items``.
        user_counts: Training interactions per user, aligned with ``users``.
    """

    users: tuple[str, ...]
    items: tuple[str, ...]
    item_counts: tuple[int, ...]
    user_counts: tuple[int, ...] = ()

    @classmethod
    def from_interactions(cls, train: Interactions) -> Vocabulary:
        """Builds the vocabulary of a training split.

        Example:
            >>> vocab = tfrec.data.Vocabulary.from_interactions(split.train)
        """
        users, user_counts = _by_count(train.frame[USER].to_numpy())
        items, item_counts = _by_count(train.frame[ITEM].to_numpy())
        return cls(
            users=tuple(users),
            items=tuple(items),
            item_counts=tuple(int(c) for c in item_counts),
            user_counts=tuple(int(c) for c in user_counts),
        )

    @property
    def num_users(self) -> int:
        """Number of known users."""
        return len(self.users)

    @property
    def num_items(self) -> int:
        """Number of known items."""
        return len(self.items)


def _by_count(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Distinct ids, most frequent first (ties by id), and their counts.

    Counted by hashing Python strings (pandas ``value_counts``): memory grows with the
    data, not with rows x the longest id as a fixed-width NumPy string array would.
    """
    counted = pd.Series(values, dtype=object).map(str).value_counts(sort=False)
    table = pd.DataFrame({"id": counted.index.to_numpy(dtype=object), "count": counted.to_numpy()})
    table = table.sort_values(["count", "id"], ascending=[False, True], kind="stable")
    return table["id"].tolist(), table["count"].to_numpy(np.int64)
