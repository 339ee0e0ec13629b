"""two_tower: side features (tokens prepared in tfrec/data/derived.py) and item similarity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec.data import Interactions, split
from tfrec.data.derived import side_features
from tfrec.training import train


def test_side_features_bucket_numbers_split_multi_values_and_name_missing_columns() -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["a", "b", "a"], "timestamp": [5, 1, 9]})
    users = pd.DataFrame(
        {"age": [20, 40, 60], "gender": ["F", "M", "F"]}, index=pd.Index(["u1", "u2", "u3"], name="user_id")
    )
    items = pd.DataFrame({"genres": ["Action|Comedy", None]}, index=pd.Index(["a", "b"], name="item_id"))
    data = Interactions(frame, items=items, users=users, name="tiny")
    user_side = side_features(data, ["u1", "u2", "u3", "u9"], ["auto"], "user")
    assert sorted(user_side) == ["age", "first_seen", "gender"]
    assert user_side["gender"] == [["F"], ["M"], ["F"], []]
    ages = user_side["age"]
    assert ages[0] != ages[2] and ages[3] == [] and all(len(a) == 1 for a in ages[:3])
    item_side = side_features(data, ["a", "b"], ["genres"], "item")
    assert item_side == {"genres": [["Action", "Comedy"], []]}
    with pytest.raises(
        tfrec.DataError, match=r"tiny: no item column 'year' for a side feature; it has \['genres'\]"
    ):
        side_features(data, ["a"], ["year"], "item")


@pytest.fixture(scope="module")
def planted_split():
    return split(tfrec.datasets.synthetic(seed=0), "leave-last-out")


def test_two_tower_uses_side_features_and_similar_items_finds_planted_neighbours(planted_split) -> None:
    data = tfrec.datasets.synthetic(seed=0)
    model = train("two_tower", planted_split.train, epochs=4, verbose=0).model
    assert sorted(model.query_tower.features) == ["age", "first_seen", "gender"]
    assert "genres" in model.candidate_tower.features
    planted = data.extras["planted"]
    topic = dict(zip(planted.item_ids, np.argmax(planted.item_topics, axis=1)))
    items = list(model.item_vocabulary[:200])
    neighbours, similarity = model.similar_items(items, k=10)
    assert neighbours.shape == (200, 10) and (np.diff(similarity, axis=1) <= 1e-6).all()
    assert not any(item in row for item, row in zip(items, neighbours))
    same = np.mean([[topic[n] == topic[i] for n in row] for i, row in zip(items, neighbours)])
    chance = np.mean([np.mean([topic[i] == topic[j] for j in model.item_vocabulary]) for i in items])
    print("same-topic neighbours", same, "chance", chance)
    assert same > 3 * chance
    with pytest.raises(tfrec.TfrecError, match="k must be an integer in"):
        model.similar_items(items[:1], k=len(model.item_vocabulary))


def test_extra_negatives_default_is_the_config_one_whichever_way_it_is_built(planted_split) -> None:
    built = tfrec.models.build("two_tower", planted_split.train)
    direct = tfrec.models.TwoTower.from_data(planted_split.train)
    assert built.objective.extra_negatives == direct.objective.extra_negatives == 0
    more = tfrec.models.TwoTower.from_data(planted_split.train, tfrec.models.TwoTowerConfig(extra_negatives=16))
    assert more.objective.extra_negatives == 16 and more.config.extra_negatives == 16
