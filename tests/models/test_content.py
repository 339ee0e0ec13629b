"""Content models: text encoders, training-only text vocabulary, cold items ranked by their text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import Interactions, Vocabulary, derived, split
from tfrec.data.derived import Catalogue, user_profiles
from tfrec.models.content import distinct_tokens
from tfrec.training import train


@pytest.mark.parametrize("encoder", ["mean", "cnn", "transformer"])
def test_unknown_words_and_empty_texts_encode(encoder) -> None:
    layer = tfrec.models.TextEncoder(
        ["good", "film", "bad"], sequence_length=6, output_dim=8, encoder=encoder
    )
    texts = tf.constant(["a GOOD film!", "", "zzz qqq unseen words", "good " * 20])
    out = layer(texts).numpy()
    assert out.shape == (4, 8) and np.isfinite(out).all()
    tokens = layer.tokenize(texts).numpy()
    assert tokens.shape == (4, 6) and not tokens[1].any() and (tokens[2][:4] == 1).all()
    clone = tfrec.models.TextEncoder.from_config(layer.get_config())
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(texts).numpy(), out, rtol=1e-5, atol=1e-6)


def test_text_vocabulary_comes_from_training_items_only() -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "item_id": ["a", "b", "c"]})
    items = pd.DataFrame(
        {"text": ["space opera", "space western", "secret leakedword"]},
        index=pd.Index(["a", "b", "c"], name="item_id"),
    )
    data = Interactions(frame, items=items, name="tiny")
    train_part = data.with_frame(frame[frame.item_id != "c"])
    catalogue = Catalogue.from_data(train_part, Vocabulary.from_interactions(train_part), max_tokens=100)
    assert set(catalogue.text_vocabulary) == {"space", "opera", "western"}
    assert (
        catalogue.item_ids[-1] == "c"
        and catalogue.num_trained == 2
        and catalogue.texts[-1] == "secret leakedword"
    )
    with pytest.raises(tfrec.DataError, match="content models need an item table with a 'text' column"):
        Catalogue.from_data(Interactions(frame, name="bare"), Vocabulary.from_interactions(train_part), 100)


@pytest.fixture(scope="module")
def cold():
    data = tfrec.datasets.synthetic(seed=0)
    return data, split(data, "cold-items:0.2", seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["content_tower", "hybrid"])
def test_cold_items_are_ranked_by_their_text(cold, name) -> None:
    data, parts = cold
    model = train(name, parts.train, epochs=3, verbose=0).model
    cold_items = sorted(set(parts.test.frame["item_id"]))
    assert not set(cold_items) & set(model.item_vocabulary)
    metrics = tfrec.evaluate(model, parts.train, parts.test, k=[20], protocol="cold-start")
    # Random ranking of the cold items finds about k / (number of cold items) of them.
    random_recall = 20 / len(cold_items)
    print(name, metrics["recall@20"], "random", random_recall)
    assert metrics["recall@20"] > 3 * random_recall
    # A cold item's text places it near the top for users whose planted taste matches it.
    planted = data.extras["planted"]
    users = list(model.user_vocabulary[:300])
    scores = model.score_all(
        model.query_embedding(tf.constant(users)), model.candidate_embedding(tf.constant(cold_items))
    ).numpy()
    affinity = planted.affinity[np.ix_([int(u[1:]) for u in users], [int(i[1:]) for i in cold_items])]
    correlations = [np.corrcoef(scores[:, j], affinity[:, j])[0, 1] for j in range(len(cold_items))]
    print(name, "median correlation with planted affinity", np.median(correlations))
    assert np.median(correlations) > 0.3


def test_content_export_serves_cold_items_from_text(cold, tmp_path) -> None:
    _, parts = cold
    model = train("content_tower", parts.train, epochs=1, verbose=0).model
    path = tfrec.export(model, tmp_path / "content_tower")
    assert [name for name, _ in tfrec.serving.warmup.read_warmup(path)][-2:] == [
        "item_embedding_from_text",
        "score_text",
    ]
    served = tfrec.serving.ExportedModel(path)
    cold_item = sorted(set(parts.test.frame["item_id"]))[0]
    catalogue = model.data.catalogue
    text = catalogue.texts[catalogue.item_ids.index(cold_item)]
    user = model.user_vocabulary[0]
    by_text = served.run("score_text", user_id=[user, user], item_text=[text, ""])["score"]
    np.testing.assert_allclose(by_text[0], model.score([user], [cold_item])[0], rtol=1e-4, atol=1e-5)
    embedding = served.run("item_embedding_from_text", item_text=[text])["embedding"]
    np.testing.assert_allclose(
        embedding, model.candidate_embedding(tf.constant([cold_item])).numpy(), rtol=1e-4, atol=1e-5
    )
    served.close()


def test_content_rating_regresses_ratings(cold) -> None:
    data, _ = cold
    parts = split(data, "random:0.2", seed=0)
    model = train("content_rating", parts.train, epochs=3, verbose=0).model
    rmse = tfrec.evaluate(model, parts.train, parts.test)["rmse"]
    truth = parts.test.frame["rating"].to_numpy()
    baseline = tfrec.evaluation.rmse(truth, np.full_like(truth, parts.train.frame["rating"].mean()))
    assert rmse < 0.9 * baseline


def test_distinct_tokens_mark_each_word_once() -> None:
    tokens = tf.constant([[3, 1, 3, 0, 2], [0, 0, 0, 0, 0], [5, 5, 5, 5, 5]], tf.int64)
    ordered, mask = (t.numpy() for t in distinct_tokens(tokens))
    assert (ordered == np.sort(tokens.numpy(), axis=1)).all()
    # Each distinct non-padding id once: {1, 2, 3}, nothing, {5}.
    assert [sorted(row[m > 0].tolist()) for row, m in zip(ordered, mask)] == [[1, 2, 3], [], [5]]


def test_content_tower_reads_popularity_from_how_much_an_item_text_says() -> None:
    # Popular training items carry many tags, rare ones a single tag, all from one pool:
    # the mean of the tag embeddings is the same in expectation, only the number differs.
    rng = np.random.default_rng(0)
    pool = [f"tag{j}" for j in range(30)]
    texts, rows = {}, []
    for i in range(60):
        popular = i < 20
        texts[f"i{i}"] = " ".join(rng.choice(pool, 8 if popular else 1, replace=False))
        users = rng.choice(200, 40 if popular else 2, replace=False)
        rows += [(f"u{u}", f"i{i}") for u in users]
    texts["cold_many"] = " ".join(rng.choice(pool, 8, replace=False))
    texts["cold_one"] = str(rng.choice(pool))
    items = pd.DataFrame({"text": list(texts.values())}, index=pd.Index(list(texts), name="item_id"))
    data = Interactions(pd.DataFrame(rows, columns=["user_id", "item_id"]), items=items, name="tags")
    model = train("content_tower", data, epochs=10, verbose=0).model
    users = list(model.user_vocabulary)
    scores = model.score_all(
        model.query_embedding(tf.constant(users)),
        model.candidate_embedding(tf.constant(["cold_many", "cold_one"])),
    ).numpy()
    # Measured: 0.84 of the users, mean margin +0.33; with the item bias read from the
    # mean encoding alone (no per-word weights) 0.005 of them, mean margin -0.66.
    assert (scores[:, 0] > scores[:, 1]).mean() > 0.6 and (scores[:, 0] - scores[:, 1]).mean() > 0


def test_user_profiles_keep_the_words_particular_to_each_user() -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "item_id": ["a", "b", "c", "d"]})
    items = pd.DataFrame(
        {"text": ["space opera", "space western", "romance space", ""]},
        index=pd.Index(["a", "b", "c", "d"], name="item_id"),
    )
    data = Interactions(frame, items=items, name="tiny")
    vocabulary = Vocabulary.from_interactions(data)
    catalogue = Catalogue.from_data(data, vocabulary, max_tokens=100)
    profiles = dict(
        zip(vocabulary.users, user_profiles(data, vocabulary, catalogue.texts, catalogue.text_vocabulary, 8))
    )
    # "space" is in 3 of the 4 items: u1 has it twice (2 x log 4/3 = 0.58), but "opera"
    # and "western" once each (log 4 = 1.39) weigh more.
    assert profiles["u1"].split()[-1] == "space" and set(profiles["u1"].split()) == {
        "space",
        "opera",
        "western",
    }
    assert set(profiles["u2"].split()) == {"romance", "space"} and profiles["u3"] == ""
    assert user_profiles(data, vocabulary, catalogue.texts, catalogue.text_vocabulary, 2)[0].count(" ") <= 1
    model = tfrec.models.build("content_tower", data, user_profile=True, embedding_dim=4)
    assert list(model.data.user_profiles) == [profiles[u] for u in vocabulary.users]
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(
        clone.query_embedding(tf.constant(["u1", "nobody"])).numpy(),
        model.query_embedding(tf.constant(["u1", "nobody"])).numpy(),
    )


def test_user_profiles_are_the_same_when_built_in_user_groups(monkeypatch) -> None:
    data = tfrec.datasets.synthetic(seed=0)
    vocabulary = Vocabulary.from_interactions(data)
    catalogue = Catalogue.from_data(data, vocabulary, max_tokens=1000)
    texts = catalogue.texts[: catalogue.num_trained]
    whole = user_profiles(data, vocabulary, texts, catalogue.text_vocabulary, 16)
    monkeypatch.setattr(derived, "PROFILE_ROWS", 5_000)
    assert user_profiles(data, vocabulary, texts, catalogue.text_vocabulary, 16) == whole
    assert sum(bool(p) for p in whole) == len(vocabulary.users)
