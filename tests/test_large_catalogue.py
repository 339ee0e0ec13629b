"""Large catalogues: ids held where saving does not walk them, ranking chunked over rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.core import chunks
from tfrec.core.chunks import rows_per_chunk
from tfrec.core.ids import Ids
from tfrec.data import split


@pytest.fixture(scope="module")
def parts(small):
    return split(small, "random:0.2", seed=0)


def test_ids_behave_like_a_read_only_list() -> None:
    ids = Ids(["a", "b", "c"])
    assert len(ids) == 3 and list(ids) == ["a", "b", "c"] and ids[1] == "b" and ids[-1] == "c"
    assert ids[:2] == ["a", "b"] and isinstance(ids[:2], list)
    assert "b" in ids and "z" not in ids and ids.index("c") == 2 and ids.count("a") == 1
    assert ids == ["a", "b", "c"] and ids == ("a", "b", "c") and ids != ["a", "b"]
    np.testing.assert_array_equal(np.asarray(ids), np.asarray(["a", "b", "c"], dtype=object))
    with pytest.raises(TypeError):
        ids[0] = "z"
    with pytest.raises(TypeError):
        hash(ids)


@pytest.mark.parametrize("name", tfrec.models.names())
def test_no_layer_holds_ids_that_saving_would_walk(name, parts) -> None:
    # Saving flattens every attribute of every layer (tf.nest) and every tracked list; a
    # vocabulary held as a list made a 1M-item export take ~7 minutes. Every attribute's
    # nested structure must stay small whatever the catalogue size.
    model = tfrec.models.build(name, parts.train)
    # TextVectorization's own lookup holds the text vocabulary as a list: bounded by
    # max_tokens (not the catalogue) and owned by Keras, so it is left as it is.
    keras_owned = {"input_vocabulary"}
    sizes = {
        f"{layer.name}.{attr}": len(tf.nest.flatten(value))
        for layer in [model, *model._flatten_layers(include_self=False)]
        for attr, value in vars(layer).items()
        if not attr.startswith("_") and not (attr in keras_owned and layer.name.startswith("string_lookup"))
    }
    assert max(sizes.values()) < parts.train.num_items, {k: v for k, v in sizes.items() if v >= 100}
    assert len(model.item_vocabulary) >= 100  # the check above would have caught a list of ids


@pytest.mark.parametrize("name", ["biased_mf", "two_tower", "content_tower"])
def test_config_turns_ids_back_into_lists(name, parts) -> None:
    config = json.loads(json.dumps(tfrec.models.build(name, parts.train).get_config()))
    lists = [value for value in config["data"].values() if isinstance(value, list) and len(value) >= 100]
    assert lists and all(isinstance(v, (str, int)) for value in lists for v in value)


def test_rows_per_chunk_bounds_scores_held_at_once() -> None:
    assert rows_per_chunk(3_706) == 1024  # small catalogues: up to 1024 rows
    assert rows_per_chunk(1_000_000) * 1_000_000 <= chunks.SCORES_PER_CHUNK
    assert rows_per_chunk(10**9) == 1  # always at least one row


@pytest.fixture(scope="module")
def model(parts):
    return tfrec.training.train("implicit_mf", parts.train, epochs=1, verbose=0).model


def score_rows_per_call(model, monkeypatch) -> list[int]:
    """Records the number of query rows of each ``model.score_all`` call from now on."""
    calls, score_all = [], model.score_all

    def counted(queries, candidates):
        calls.append(int(queries.shape[0]))
        return score_all(queries, candidates)

    monkeypatch.setattr(model, "score_all", counted)
    return calls


def test_recommend_and_similar_items_are_equal_in_chunks(parts, model, monkeypatch) -> None:
    users = list(parts.train.frame["user_id"].unique()[:25])
    exclude = [list(parts.train.frame.loc[parts.train.frame["user_id"] == u, "item_id"]) for u in users]
    items = list(model.item_vocabulary[:9])
    whole = model.recommend(users, k=7, exclude=exclude), model.similar_items(items, k=5)
    calls = score_rows_per_call(model, monkeypatch)
    monkeypatch.setattr(chunks, "SCORES_PER_CHUNK", 4 * len(model.item_vocabulary))  # 4 rows per chunk
    chunked = model.recommend(users, k=7, exclude=exclude), model.similar_items(items, k=5)
    assert calls == [4] * 6 + [1]
    for (got_ids, got_scores), (want_ids, want_scores) in zip(chunked, whole):
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-6)
    for row, items_seen in enumerate(exclude):
        assert not set(chunked[0][0][row]) & set(items_seen)


def test_evaluation_default_chunks_shrink_with_the_catalogue(parts, model, monkeypatch) -> None:
    whole = tfrec.evaluate(model, parts.train, parts.test)
    calls = score_rows_per_call(model, monkeypatch)
    monkeypatch.setattr(chunks, "SCORES_PER_CHUNK", 3 * len(model.item_vocabulary))  # 3 users per chunk
    assert tfrec.evaluate(model, parts.train, parts.test) == pytest.approx(whole, rel=1e-6)
    assert max(calls) == 3 and sum(calls) == whole["users"]
