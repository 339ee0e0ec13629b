"""biased_mf: planted biases recovered, the count-weighted penalty."""

from __future__ import annotations

import numpy as np
import pandas as pd

import tfrec
from tfrec._keras import tf
from tfrec.data import split
from tfrec.training import train


def test_biased_mf_recovers_planted_biases_and_beats_the_mean() -> None:
    data = tfrec.datasets.synthetic(seed=0)
    parts = split(data, "random:0.2", seed=0)
    model = train("biased_mf", parts.train, epochs=8, verbose=0).model
    metrics = tfrec.evaluate(model, parts.train, parts.test)
    truth = parts.test.frame["rating"].to_numpy()
    mean_only = tfrec.evaluation.rmse(truth, np.full_like(truth, parts.train.frame["rating"].mean()))
    assert metrics["rmse"] < 0.85 * mean_only
    # Learned item biases follow the planted ones.
    planted = data.extras["planted"]
    items = np.asarray(model.item_vocabulary)
    learned = model.head.item_part(model.item_index(tf.constant(items))).numpy()[:, 0]
    assert np.corrcoef(learned, planted.item_bias[[int(i[1:]) for i in items]])[0, 1] > 0.6


def test_biased_mf_penalty_grows_as_a_power_of_the_count() -> None:
    frame = pd.DataFrame(
        {"user_id": ["a"] * 4 + ["b"], "item_id": ["x", "y", "z", "w", "x"], "rating": [4.0] * 5}
    )
    ratings = tfrec.data.Interactions(frame, name="tiny")
    model = tfrec.models.build("biased_mf", ratings, penalty_power=0.5, init_stddev=0.5)
    assert list(model.user_vocabulary) == ["a", "b"] and list(model.data.user_counts) == [4, 1]
    # count ** -0.5 = [0.5, 1], divided by its mean over the 5 examples (3 / 5): a row's
    # total over an epoch, 4 * 0.833 vs 1 * 1.667, grows as sqrt(count).
    np.testing.assert_allclose(model.user_weight.numpy(), [1.0, 5 / 6, 5 / 3], rtol=1e-6)
    batch = {"user_id": tf.constant(["a", "b"]), "item_id": tf.constant(["y", "x"])}
    _, penalty = model.rating_and_penalty(batch)
    users, items = model.user_index(batch["user_id"]), model.item_index(batch["item_id"])
    p, q = model.user_factors(users).numpy(), model.item_factors(items).numpy()
    u_w = np.array([5 / 6, 5 / 3])
    i_w = model.item_weight.numpy()[items.numpy()]
    expected = model.config.l2_factors * np.mean(u_w * (p * p).sum(1) + i_w * (q * q).sum(1))
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-5)  # the biases start at zero
    plain = tfrec.models.build("biased_mf", ratings, penalty_power=1.0)
    np.testing.assert_allclose(plain.user_weight.numpy(), 1.0)
