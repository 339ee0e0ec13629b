"""two_tower with dense item features (cold items from their vector), a listening-history
user tower and play-count confidence, on planted data whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import Interactions
from tfrec.data.derived import DenseTable, dense_columns, histories
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.heads import RetrievalObjective
from tfrec.training import train

GROUPS, WARM, COLD, USERS = 4, 12, 3, 15


def planted(seed: int = 0) -> tuple[Interactions, pd.DataFrame]:
    """Users of ``GROUPS`` tastes play items of their group; an item's 4-number vector says
    its group (a one-hot direction plus noise, on scales as different as audio
    descriptors'). Each group also has ``COLD`` items nobody played (in the item table
    only). Returns the data and the cold test frame (each user x their group's cold items)."""
    rng = np.random.default_rng(seed)
    rows, cold_rows, table = [], [], []
    scale = np.array([1.0, 100.0, 0.01, 10.0])
    for g in range(GROUPS):
        for j in range(WARM + COLD):
            vector = (np.eye(GROUPS)[g] + rng.normal(0, 0.15, GROUPS)) * scale
            table.append((f"i{g}_{j}", *vector, j >= WARM))
        for u in range(USERS):
            liked = rng.choice(WARM, size=6, replace=False)
            rows += [(f"u{g}_{u}", f"i{g}_{j}", float(rng.integers(1, 500))) for j in liked]
            cold_rows += [(f"u{g}_{u}", f"i{g}_{j}") for j in range(WARM, WARM + COLD)]
    items = pd.DataFrame(table, columns=["item_id", "f_a", "f_b", "f_c", "f_d", "cold"]).set_index("item_id")
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "weight"])
    return Interactions(frame, items=items, name="planted-dense"), pd.DataFrame(
        cold_rows, columns=["user_id", "item_id"]
    )


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    train_data, _ = data
    settings = {"dense_features": ("f_*",), "history_length": 10, "id_dropout": 0.5, "confidence": "log"}
    return train(
        "two_tower", train_data, epochs=40, batch_size=64, embedding_dim=16, learning_rate=1e-2, verbose=0,
        **settings,
    ).model  # fmt: skip


def test_dense_columns_take_names_and_globs_and_name_what_is_missing(data) -> None:
    items = data[0].items
    assert dense_columns(items, ["f_*"], "x") == ["f_a", "f_b", "f_c", "f_d"]
    assert dense_columns(items, ["f_d", "f_a"], "x") == ["f_a", "f_d"]
    with pytest.raises(
        tfrec.DataError, match=r"x: no numeric item column matches 'audio_\*'; numeric columns: "
    ):
        dense_columns(items, ["audio_*"], "x")


def test_dense_table_lists_training_items_then_cold_ones_and_skips_incomplete_vectors(data) -> None:
    train_data = data[0]
    items = train_data.items.copy()
    items.loc["i0_0", "f_b"] = np.nan  # an incomplete vector counts as none
    vocabulary = Vocabulary.from_interactions(train_data)
    table = DenseTable.from_data(train_data, vocabulary, ["f_*"])
    without = DenseTable.from_data(Interactions(train_data.frame, items=items, name="x"), vocabulary, ["f_*"])
    assert table.item_ids[: table.num_trained] == tuple(i for i in vocabulary.items)
    assert set(table.item_ids[table.num_trained :]) == {
        f"i{g}_{j}" for g in range(GROUPS) for j in range(WARM, WARM + COLD)
    }
    assert "i0_0" not in without.item_ids and without.num_trained == table.num_trained - 1
    assert DenseTable.from_config(table.to_config()) == table


def test_normalization_is_adapted_on_training_items_only(fitted, data) -> None:
    items = data[0].items
    trained = items.loc[list(fitted.item_vocabulary), ["f_a", "f_b", "f_c", "f_d"]].to_numpy()
    layer = fitted.item_features.normalization
    np.testing.assert_allclose(np.asarray(layer.mean).ravel(), trained.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.variance).ravel(), trained.var(axis=0), rtol=1e-3)
    everything = items[["f_a", "f_b", "f_c", "f_d"]].to_numpy()
    assert not np.allclose(trained.mean(axis=0), everything.mean(axis=0), rtol=1e-4)


def test_histories_keep_the_heaviest_items_with_log_weights() -> None:
    frame = pd.DataFrame(
        {"user_id": ["a", "a", "a", "b"], "item_id": ["x", "y", "z", "x"], "weight": [5.0, 50.0, 1.0, 2.0]}
    )
    data = Interactions(frame, name="h")
    vocabulary = Vocabulary.from_interactions(data)
    items, weights = histories(data, vocabulary, 2)
    position = {item: i + 1 for i, item in enumerate(vocabulary.items)}
    user = list(vocabulary.users).index("a")
    assert items[user] == [position["y"], position["x"]]
    np.testing.assert_allclose(weights[user], np.log1p([50.0, 5.0]), rtol=1e-6)


def test_a_cold_items_vector_alone_places_it_first_for_its_group(fitted, data) -> None:
    train_data, cold = data
    test = train_data.with_frame(cold, "cold")
    cold_only = tfrec.evaluate(fitted, train_data, test, k=[3], protocol="cold-start")
    # 12 cold items, 3 of each group: chance recall@3 is 0.25.
    assert cold_only["recall@3"] > 0.8, cold_only
    vectors = train_data.items.loc[cold["item_id"].to_numpy()[:5], ["f_a", "f_b", "f_c", "f_d"]].to_numpy(
        np.float32
    )
    from_vectors = tf.reduce_sum(
        fitted.query_embedding(tf.constant(cold["user_id"].to_numpy()[:5]))
        * fitted.candidate_from_features(tf.constant(vectors)), axis=1
    )  # fmt: skip
    np.testing.assert_allclose(
        fitted.score(cold["user_id"][:5], cold["item_id"][:5]), from_vectors, rtol=1e-5, atol=1e-5
    )


def test_compare_on_the_cold_start_protocol_ranks_only_cold_items(fitted, data) -> None:
    train_data, cold = data
    test = train_data.with_frame(cold, "cold")
    same = tfrec.evaluation.compare(
        fitted, fitted, train_data, test, metric="recall@3", protocol="cold-start"
    )
    expected = tfrec.evaluate(fitted, train_data, test, k=[3], protocol="cold-start")
    assert same["a"] == pytest.approx(expected["recall@3"]) and same["verdict"] == "tie"
    with pytest.raises(tfrec.TfrecError, match="protocol must be 'full' or 'cold-start'"):
        tfrec.evaluation.compare(fitted, fitted, train_data, test, protocol="sampled:9")


def test_a_new_user_is_served_from_their_history(fitted) -> None:
    group_items = [f"i2_{j}" for j in range(3)]
    index = fitted.item_index(tf.constant([group_items]))
    query = fitted.query_from_history(index, tf.constant([[100.0, 10.0, 1.0]]))
    scores = fitted.score_all(query, fitted.catalogue_embeddings()).numpy()[0]
    top = [fitted.item_vocabulary[j] for j in np.argsort(-scores)[:8]]
    assert sum(item.startswith("i2_") for item in top) >= 7, top
    ids, best = fitted.recommend_from_history([group_items, ["i1_0"]], k=6, weights=[[100.0, 10.0, 1.0], [3.0]])
    assert ids.shape == (2, 6) and (np.diff(best, axis=1) <= 1e-6).all()
    assert not set(ids[0]) & set(group_items) and sum(i.startswith("i2_") for i in ids[0]) >= 5
    assert "i1_0" not in ids[1] and sum(i.startswith("i1_") for i in ids[1]) >= 5
    with pytest.raises(tfrec.TfrecError, match="one number per history item"):
        fitted.recommend_from_history([group_items], weights=[[1.0]])


def test_training_leaves_each_positive_out_of_its_own_history(fitted) -> None:
    users = tf.constant(["u1_0", "u1_0"])
    user_index = fitted.user_index(users)
    own = fitted.history_pool.of_users(user_index)[0][0, 0]
    left_out = fitted.training_queries(user_index, tf.stack([own, tf.constant(0, tf.int64)]))
    assert not np.allclose(left_out[0], left_out[1])
    np.testing.assert_allclose(left_out[1], fitted.query_from_index(user_index)[1], rtol=1e-5, atol=1e-6)


def test_log_confidence_weighs_each_positive_by_log1p_of_its_weight() -> None:
    objective = RetrievalObjective([5, 5, 5], logq_correction=False, confidence="log")
    queries = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    candidates = tf.constant([[2.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    plays = np.array([3.0, 0.0, 20.0], np.float32)
    got = objective.loss(
        queries, candidates, tf.constant([1, 2, 3], tf.int64), lambda i: None, weights=tf.constant(plays)
    )
    logits = queries.numpy() @ candidates.numpy().T
    per_example = -np.log(np.exp(np.diag(logits)) / np.exp(logits).sum(axis=1))
    weights = np.log1p(plays) / np.log1p(plays).mean()
    assert float(got) == pytest.approx(float((weights * per_example).sum() / 3), rel=1e-5)
    binary = RetrievalObjective([5, 5, 5], logq_correction=False)
    unweighted = binary.loss(
        queries, candidates, tf.constant([1, 2, 3], tf.int64), lambda i: None, weights=tf.constant(plays)
    )
    assert float(unweighted) == pytest.approx(float(per_example.mean()), rel=1e-5)


def test_ials_reads_play_counts_as_its_confidence_values() -> None:
    from tfrec.models.ials import pair_table

    frame = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "weight": [7.0, 1.0, 3.0]})
    data = Interactions(frame, name="plays")
    _, _, values = pair_table(data, Vocabulary.from_interactions(data))
    assert sorted(values.tolist()) == [1.0, 3.0, 7.0]  # the counts, not 1 per pair


def test_weights_are_validated() -> None:
    frame = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "x"], "weight": [1.0, -2.0]})
    with pytest.raises(tfrec.DataError, match=r"column 'weight' must hold numbers >= 0 .* rows 1"):
        Interactions(frame, name="w")
    with pytest.raises(tfrec.DataError, match="has no 'weight' column"):
        tfrec.data.to_dataset(frame.drop(columns="weight"), weights=True)


@pytest.mark.slow
def test_export_round_trips_the_feature_and_history_signatures(fitted, data, tmp_path) -> None:
    train_data, cold = data
    path = tfrec.export(fitted, tmp_path / "music")
    served = tfrec.serving.ExportedModel(tmp_path / "music")
    try:
        vectors = train_data.items.loc[cold["item_id"].to_numpy()[:4], ["f_a", "f_b", "f_c", "f_d"]].to_numpy(
            np.float32
        )
        users = cold["user_id"].to_numpy()[:4]
        got = served.run("score_features", user_id=users, features=vectors)["score"]
        np.testing.assert_allclose(got, fitted.score(users, cold["item_id"][:4]), rtol=1e-4, atol=1e-4)
        embedded = served.run("item_embedding_from_features", features=vectors)["embedding"]
        np.testing.assert_allclose(
            embedded, fitted.candidate_from_features(tf.constant(vectors)), rtol=1e-4, atol=1e-5
        )
        history = np.asarray([["i2_0", "i2_1", "i2_2"], ["i0_0", "", ""]], dtype=object)
        plays = np.asarray([[100.0, 10.0, 1.0], [5.0, 0.0, 0.0]], np.float32)
        answer = served.run("recommend_from_history", history_item_ids=history, history_weights=plays, k=5)
        ids = answer["item_ids"].astype(str)
        assert ids.shape == (2, 5) and not set(ids[0]) & set(history[0]) and "i0_0" not in ids[1]
        assert sum(i.startswith("i2_") for i in ids[0]) == 5 and sum(i.startswith("i0_") for i in ids[1]) == 5
    finally:
        served.close()
    assert (path / "assets.extra" / "tfrec_metadata.json").read_text().count("f_a") == 1


def test_a_deeper_feature_path_is_built_and_survives_its_config(data) -> None:
    train_data, cold = data
    model = tfrec.models.build("two_tower", train_data, dense_features=("f_*",), dense_hidden_units=(8,))
    assert [layer.units for layer in model.item_features.hidden] == [8]
    copy = type(model).from_config(model.get_config())
    copy.build_now().set_weights(model.get_weights())
    vectors = tf.constant(train_data.items[["f_a", "f_b", "f_c", "f_d"]].to_numpy(np.float32)[:5])
    np.testing.assert_allclose(copy.candidate_from_features(vectors), model.candidate_from_features(vectors), rtol=1e-6)
    with pytest.raises(tfrec.TfrecError, match="dense_hidden_units"):
        tfrec.models.build("two_tower", train_data, dense_hidden_units=(0,))
