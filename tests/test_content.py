"""Content models: text encoders, training-only text vocabulary, cold items ranked by their text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import Interactions, Vocabulary, split
from tfrec.models.content import Catalogue
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
    assert [name for name, _ in tfrec.serving.exporter.read_warmup(path)][-2:] == [
        "item_embedding_from_text",
        "score_text",
    ]
    served = tfrec.serving.ExportedModel(path)
    cold_item = sorted(set(parts.test.frame["item_id"]))[0]
    text = model.catalogue_texts[model.catalogue_ids.index(cold_item)]
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
