"""The life every registered model goes through: build, fit, predict, save/load, config."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import keras, tf
from tfrec.data import split
from tfrec.training import train


@pytest.fixture(scope="module")
def parts(small):
    return split(small, "random:0.2", seed=0)


def assert_config_round_trip(model) -> None:
    """config -> JSON -> object -> the same JSON."""
    config = model.get_config()
    text = json.dumps(config, sort_keys=True)
    clone = type(model).from_config(json.loads(text))
    assert json.dumps(clone.get_config(), sort_keys=True) == text


def assert_save_load_equal(model, path, users, items) -> None:
    """save -> load -> the same outputs."""
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.score(users, items), model.score(users, items), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", tfrec.models.names())
def test_model_life(name, parts, tmp_path) -> None:
    result = train(name, parts.train, epochs=1, batch_size=256, verbose=0)
    model = result.model
    assert np.isfinite(result.history["loss"]).all()

    users = parts.test.frame["user_id"].to_numpy()[:50]
    items = parts.test.frame["item_id"].to_numpy()[:50]
    scores = model.score(users, items)
    assert scores.shape == (50,) and scores.dtype == np.float32 and np.isfinite(scores).all()

    ids, top = model.recommend(users[:3], k=5)
    assert ids.shape == (3, 5) and top.shape == (3, 5)
    assert (np.diff(top, axis=1) <= 1e-6).all()
    assert set(ids.ravel()) <= set(parts.train.item_ids)

    unknown = model.score(["no-such-user", ""], ["no-such-item", items[0]])
    assert np.isfinite(unknown).all()

    assert_config_round_trip(model)
    assert_save_load_equal(model, tmp_path / f"{name}.keras", users, items)
    assert_export_serves_the_same(model, tmp_path / "exports" / name, users[:3])


def assert_export_serves_the_same(model, base, users) -> None:
    """export (validated in a fresh process) -> the TF Serving path answers as the model does."""
    path = tfrec.export(model, base)
    assert path == base / "1" and (path / "assets.extra" / "tf_serving_warmup_requests").is_file()
    served = tfrec.serving.ExportedModel(base)
    try:
        got = served.run("recommend", user_id=users, k=5)
        ids, scores = model.recommend(users, k=5)
        np.testing.assert_array_equal(got["item_ids"].astype(str), ids)
        np.testing.assert_allclose(got["scores"], scores, rtol=1e-5, atol=1e-5)
    finally:
        served.close()


def test_recommend_excludes_and_checks_k(parts) -> None:
    model = tfrec.models.build("biased_mf", parts.train)
    user = parts.train.frame["user_id"].iloc[0]
    ids, _ = model.recommend([user], k=10)
    again, _ = model.recommend([user], k=10, exclude=[list(ids[0, :3])])
    assert not set(ids[0, :3]) & set(again[0]) and list(again[0, :7]) == list(ids[0, 3:])
    for bad in (0, -1, len(model.item_vocabulary) + 1, 2.5):
        with pytest.raises(tfrec.TfrecError, match="k must be an integer in"):
            model.recommend([user], k=bad)


def test_build_rejects_unknown_names_fields_and_values(parts) -> None:
    with pytest.raises(tfrec.TfrecError, match=r"unknown model 'svd'; registered models: \["):
        tfrec.models.build("svd", parts.train)
    with pytest.raises(tfrec.TfrecError, match=r"unknown config field\(s\) \['dim'\]; allowed: \["):
        tfrec.models.build("biased_mf", parts.train, dim=3)
    with pytest.raises(tfrec.TfrecError, match="embedding_dim=0 is invalid: must be a positive integer"):
        tfrec.models.build("biased_mf", parts.train, embedding_dim=0)
    with pytest.raises(tfrec.TfrecError, match="embedding_dim='x' is not a valid int"):
        tfrec.models.build("biased_mf", parts.train, embedding_dim="x")


def test_biased_mf_recovers_planted_biases_and_beats_baselines() -> None:
    data = tfrec.datasets.synthetic(seed=0)
    parts = split(data, "random:0.2", seed=0)
    result = train("biased_mf", parts.train, epochs=8, verbose=0)
    metrics = tfrec.evaluate(result.model, parts.train, parts.test)
    truth = parts.test.frame["rating"].to_numpy()
    mean_only = tfrec.evaluation.rmse(truth, np.full_like(truth, parts.train.frame["rating"].mean()))
    assert metrics["rmse"] < 0.85 * mean_only
    # Learned item biases follow the planted ones.
    model = result.model
    planted = data.extras["planted"]
    items = np.asarray(model.item_vocabulary)
    learned = model.item_bias(model.item_lookup(items)).numpy()[:, 0]
    assert np.corrcoef(learned, planted.item_bias[[int(i[1:]) for i in items]])[0, 1] > 0.6


def test_biased_mf_penalty_grows_as_a_power_of_the_count() -> None:
    frame = pd.DataFrame(
        {"user_id": ["a"] * 4 + ["b"], "item_id": ["x", "y", "z", "w", "x"], "rating": [4.0] * 5}
    )
    ratings = tfrec.data.Interactions(frame, name="tiny")
    model = tfrec.models.build("biased_mf", ratings, penalty_power=0.5, init_stddev=0.5)
    users = np.asarray(model.user_vocabulary)
    assert list(users) == ["a", "b"] and list(model.user_counts) == [4, 1]
    # count ** -0.5 = [0.5, 1], divided by its mean over the 5 examples (3 / 5): a row's
    # total over an epoch, 4 * 0.833 vs 1 * 1.667, grows as sqrt(count).
    np.testing.assert_allclose(model.user_weight.numpy(), [1.0, 5 / 6, 5 / 3], rtol=1e-6)
    batch = {"user_id": tf.constant(["a", "b"]), "item_id": tf.constant(["y", "x"])}
    _, penalty = model._rating(batch)
    p = model.user_factors(model.user_lookup(batch["user_id"])).numpy()
    q = model.item_factors(model.item_lookup(batch["item_id"])).numpy()
    u_w = np.array([5 / 6, 5 / 3])
    i_w = model.item_weight.numpy()[model.item_lookup(batch["item_id"]).numpy()]
    expected = model.l2_factors * np.mean(u_w * (p * p).sum(1) + i_w * (q * q).sum(1))
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-5)  # the biases start at zero
    plain = tfrec.models.build("biased_mf", ratings, penalty_power=1.0)
    np.testing.assert_allclose(plain.user_weight.numpy(), 1.0)


@pytest.mark.parametrize(
    "name, field, value, allowed",
    [
        ("implicit_mf", "loss", "hinge", "one of ['softmax', 'bpr']"),
        ("implicit_mf", "temperature", 0, "a number > 0"),
        ("deep_mf", "feedback", "both", "one of ['explicit', 'implicit']"),
        ("deep_mf", "dropout", 1.0, "a number in [0, 1)"),
        ("deep_mf", "hidden_units", (64, 0), "positive integers"),
        ("biased_mf", "epochs", 0, "a positive integer"),
        ("gmf", "num_negatives", 0, "a positive integer"),
        ("gmf", "sampler", "hard", "one of ['uniform', 'popularity']"),
        ("mlp", "mlp_layers", (7, 3), "positive integers, the first even"),
        ("neumf", "pretrain_alpha", 2, "a number in [0, 1]"),
        ("two_tower", "extra_negatives", -1, "an integer >= 0"),
        ("two_tower", "item_features", ("",), "column names"),
    ],
)
def test_config_values_are_checked(name, field, value, allowed) -> None:
    with pytest.raises(tfrec.TfrecError, match=re.escape(f"{field}={value!r} is invalid: must be {allowed}")):
        tfrec.models.make_config(name, **{field: value})


def test_cli_style_strings_are_coerced() -> None:
    config = tfrec.models.make_config("deep_mf", hidden_units="32,16", logq_correction="false", dropout="0.1")
    assert config.hidden_units == (32, 16) and config.logq_correction is False and config.dropout == 0.1
