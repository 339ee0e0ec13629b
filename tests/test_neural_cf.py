"""The neural CF family: NeuMF's pre-trained initialisation, side features, item similarity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import Interactions, split
from tfrec.data.derived import side_features
from tfrec.training import train


def test_neumf_from_gmf_and_mlp_fuses_their_logits() -> None:
    data = tfrec.data.ModelData(users=["u0", "u1", "u2"], items=["a", "b", "c", "d"])
    gmf = tfrec.models.GMF(tfrec.models.GMFConfig(factors=4), data)
    mlp = tfrec.models.MLP(tfrec.models.MLPConfig(mlp_layers=(8, 4)), data)
    neumf = tfrec.models.NeuMF(tfrec.models.NeuMFConfig(factors=4, mlp_layers=(8, 4)), data)
    rng = np.random.default_rng(0)
    for model in (gmf, mlp):
        model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    neumf.initialise_from(gmf, mlp, alpha=0.3)

    def logits(model):
        q = model.query_embedding(tf.constant(["u0", "u1", "u2", "u0"]))
        c = model.candidate_embedding(tf.constant(["a", "b", "d", "zzz"]))
        return model.interact(q, c).numpy()

    np.testing.assert_allclose(logits(neumf), 0.3 * logits(gmf) + 0.7 * logits(mlp), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="MLP layers must match"):
        neumf.initialise_from(gmf, tfrec.models.MLP(tfrec.models.MLPConfig(mlp_layers=(8, 2)), data))


def test_neural_cf_scores_agree_across_paths() -> None:
    """score(), score_all() and score_cases() give the same probability for a pair."""
    data = tfrec.data.ModelData(users=["u0", "u1"], items=["a", "b", "c"])
    model = tfrec.models.NeuMF(tfrec.models.NeuMFConfig(factors=3, mlp_layers=(6, 3)), data)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    pairs = model.score(["u0", "u0", "u1"], ["a", "c", "b"])
    q = model.query_embedding(tf.constant(["u0", "u1"]))
    c = model.candidate_embedding(tf.constant(["a", "b", "c"]))
    grid = model.score_all(q, c).numpy()
    cases = model.score_cases(q, tf.stack([c, c])).numpy()
    np.testing.assert_allclose(pairs, [grid[0, 0], grid[0, 2], grid[1, 1]], rtol=1e-5)
    np.testing.assert_allclose(grid, cases, rtol=1e-5)
    assert ((0 < grid) & (grid < 1)).all()


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
