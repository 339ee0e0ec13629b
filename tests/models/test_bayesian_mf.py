"""bayesian_mf: its Gibbs sampler's statistics and draws against closed forms, and the fitted model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import keras, tf
from tfrec.data import ModelData, RatingStats, split
from tfrec.models.bayesian_mf import CHUNK
from tfrec.models.gibbs import (
    conditional_draw,
    conjugate_gradients,
    link_draw,
    normal_wishart_draw,
    running_average_update,
    wishart_draw,
)
from tfrec.training import train


def tiny_model(num_users: int, num_items: int, k: int = 3) -> tfrec.models.BayesianMF:
    data = ModelData(
        users=[f"u{j}" for j in range(num_users)],
        items=[f"i{j}" for j in range(num_items)],
        ratings=RatingStats(mean=3.0, low=1.0, high=5.0, count=0),
    )
    return tfrec.models.BayesianMF(tfrec.models.BayesianMFConfig(embedding_dim=k, implicit_feedback=False), data)


def test_statistics_are_the_per_row_sums_of_outer_products() -> None:
    rng = np.random.default_rng(0)
    model = tiny_model(5, 200, k=3)
    # Row 2 has more ratings than a chunk holds; rows arrive unsorted.
    rows = np.concatenate([np.full(CHUNK * 2 + 5, 2), rng.integers(1, 6, 40)])
    rng.shuffle(rows)
    x = rng.standard_normal((len(rows), 3)).astype(np.float32)
    target = rng.standard_normal(len(rows)).astype(np.float32)
    model._add_statistics(tf.constant(rows, tf.int64), tf.constant(x), tf.constant(target))
    model._add_statistics(tf.constant(rows[:7], tf.int64), tf.constant(x[:7]), tf.constant(target[:7]))
    gram, rhs = np.zeros(model.gram.shape), np.zeros(model.rhs.shape)
    for r, xr, t in zip(
        np.concatenate([rows, rows[:7]]), np.concatenate([x, x[:7]]), np.concatenate([target, target[:7]])
    ):
        gram[r] += np.outer(xr, xr)
        rhs[r] += xr * t
    np.testing.assert_allclose(model.gram.numpy(), gram, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.rhs.numpy(), rhs, rtol=1e-5, atol=1e-4)


def test_conditional_draws_have_the_posterior_mean_and_covariance() -> None:
    rng = np.random.default_rng(1)
    k, n = 3, 40_000
    a = rng.standard_normal((10, k))
    gram1, rhs1 = a.T @ a, a.T @ rng.standard_normal(10)
    prior_mean, prior_precision = rng.standard_normal(k), np.eye(k) * 2.0 + 0.3
    noise = 1.7
    draws = conditional_draw(
        tf.constant(np.repeat(gram1[None], n, 0)), tf.constant(np.repeat(rhs1[None], n, 0)),
        tf.constant(prior_mean), tf.constant(prior_precision), tf.constant(noise, tf.float64),
        tf.constant([3, 4], tf.int64),
    ).numpy()  # fmt: skip
    precision = prior_precision + noise * gram1
    covariance = np.linalg.inv(precision)
    mean = covariance @ (prior_precision @ prior_mean + noise * rhs1)
    stderr = np.sqrt(np.diag(covariance) / n)
    assert (np.abs(draws.mean(0) - mean) < 5 * stderr).all()
    np.testing.assert_allclose(np.cov(draws.T), covariance, atol=0.05 * np.abs(covariance).max())


def test_wishart_draws_average_to_dof_times_scale() -> None:
    rng = np.random.default_rng(2)
    b = rng.standard_normal((3, 3))
    scale = tf.constant(b @ b.T + np.eye(3))
    draws = np.stack(
        [
            wishart_draw(scale, tf.constant(7.0, tf.float64), tf.constant([s, 9], tf.int64))
            for s in range(1000)
        ]
    )
    np.testing.assert_allclose(
        draws.mean(0), 7.0 * scale.numpy(), atol=0.08 * 7.0 * np.abs(scale.numpy()).max()
    )
    assert all(np.linalg.eigvalsh(d).min() > 0 for d in draws[:50])  # positive definite


def test_normal_wishart_prior_centres_on_the_factors() -> None:
    rng = np.random.default_rng(3)
    factors = rng.normal([1.0, -2.0], [0.5, 0.25], size=(5000, 2))
    means, precisions = zip(
        *(normal_wishart_draw(tf.constant(factors), tf.constant([s, 1], tf.int64), tf.constant([s, 2], tf.int64))
          for s in range(20))
    )  # fmt: skip
    np.testing.assert_allclose(np.mean(means, 0), [1.0, -2.0], atol=0.05)
    # The precision matches the factors' (1 / 0.25, 1 / 0.0625) within sampling error.
    np.testing.assert_allclose(np.diag(np.mean(precisions, 0)), [4.0, 16.0], rtol=0.1)


def test_fit_alternates_sides_and_averages_after_burn_in(small) -> None:
    parts = split(small, "random:0.2", seed=0)
    result = train("bayesian_mf", parts.train, epochs=6, burn_in=2, verbose=0)
    model = result.model
    assert int(model.epochs_sampled.numpy()) == 6 and float(model.samples_averaged.numpy()) == 2.0
    assert np.isfinite(result.history["noise_precision"]).all() and min(result.history["noise_precision"]) > 0
    # The towers hold the average of the two sweeps' predictions, not the last draw.
    average = model.user_average.numpy() @ model.item_average.numpy().T
    last = model.user_factors.numpy() @ model.item_factors.numpy().T
    assert not np.allclose(average, last, atol=1e-3)
    assert np.allclose(model.user_average.numpy()[0], 0) and np.allclose(model.item_factors.numpy()[0], 0)


def pairs(parts, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    return parts.test.frame["user_id"].to_numpy()[:n], parts.test.frame["item_id"].to_numpy()[:n]


def test_running_average_is_the_mean_of_the_sampled_matrices() -> None:
    rng = np.random.default_rng(4)
    users, items, k, rank = 30, 40, 3, 12
    x, y = tf.zeros([users, rank], tf.float64), tf.zeros([items, rank], tf.float64)
    products = []
    for n in range(1, 5):  # four rank-3 samples fit exactly in rank 12
        p, q = rng.standard_normal((users, k)), rng.standard_normal((items, k))
        products.append(p @ q.T)
        x, y = running_average_update(x, y, tf.constant(p), tf.constant(q), tf.constant(float(n), tf.float64))
        np.testing.assert_allclose(x.numpy() @ y.numpy().T, np.mean(products, axis=0), atol=1e-9)
    assert x.shape == (users, rank) and y.shape == (items, rank)


def test_seeded_runs_draw_the_same_chain(small) -> None:
    parts = split(small, "random:0.2", seed=0)
    users, items = parts.test.frame["user_id"].to_numpy()[:20], parts.test.frame["item_id"].to_numpy()[:20]
    first = train("bayesian_mf", parts.train, epochs=4, burn_in=2, seed=5, verbose=0).model.score(
        users, items
    )
    again = train("bayesian_mf", parts.train, epochs=4, burn_in=2, seed=5, verbose=0).model.score(
        users, items
    )
    other = train("bayesian_mf", parts.train, epochs=4, burn_in=2, seed=6, verbose=0).model.score(
        users, items
    )
    np.testing.assert_allclose(first, again, rtol=1e-6)
    assert not np.allclose(first, other)


def test_recovers_planted_ratings_better_than_the_mean() -> None:
    data = tfrec.datasets.synthetic(seed=0)
    parts = split(data, "random:0.2", seed=0)
    model = train("bayesian_mf", parts.train, epochs=40, burn_in=10, verbose=0).model
    metrics = tfrec.evaluate(model, parts.train, parts.test)
    truth = parts.test.frame["rating"].to_numpy()
    mean_only = tfrec.evaluation.rmse(truth, np.full_like(truth, parts.train.frame["rating"].mean()))
    assert metrics["rmse"] < 0.85 * mean_only


def test_needs_ratings_and_validates_its_config(small) -> None:
    frame = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]})
    with pytest.raises(tfrec.errors.DataError, match="bayesian_mf needs explicit ratings"):
        tfrec.models.build("bayesian_mf", tfrec.data.Interactions(frame, name="clicks"))
    with pytest.raises(tfrec.TfrecError, match="burn_in=-1 is invalid: must be an integer >= 0"):
        tfrec.models.build("bayesian_mf", small, burn_in=-1)
    with pytest.raises(tfrec.TfrecError, match=r"average_rank=8 is invalid: must be at least embedding_dim \(30\)"):
        tfrec.models.build("bayesian_mf", small, average_rank=8)
    data = ModelData(users=["u0", "u1"], items=["i0", "i1"], ratings=RatingStats(3.5, 3.0, 4.0, count=2))
    unset = tfrec.models.BayesianMF(tfrec.models.BayesianMFConfig(embedding_dim=3, average_rank=3), data)
    unset.compile()
    ratings = tf.data.Dataset.from_tensor_slices(
        ({"user_id": ["u0", "u1"], "item_id": ["i0", "i1"]}, [4.0, 3.0])
    ).batch(2)
    with pytest.raises(tfrec.TfrecError, match="the rating pattern is not set; call set_pattern"):
        unset.fit(ratings, epochs=1, verbose=0)
    with pytest.raises(tfrec.TfrecError, match="1 ratings for a model built for 2"):
        unset.set_pattern(["u0"], ["i0"])
    unset.set_pattern(["u0", "u1"], ["i0", "i1"])
    assert unset.fit(ratings, epochs=2, verbose=0).history["loss"][-1] >= 0


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None) -> None:
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill")


def test_interrupted_fit_resumes_to_the_same_chain(small, tmp_path) -> None:
    parts = split(small, "random:0.2", seed=0)
    settings = dict(epochs=6, burn_in=2, seed=3, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train("bayesian_mf", parts.train, backup_dir=tmp_path / "backup", callbacks=[Interrupt()], **settings)
    resumed = train("bayesian_mf", parts.train, backup_dir=tmp_path / "backup", **settings)
    assert resumed.epochs_run[0] >= 1, "the second run did not resume"
    straight = train("bayesian_mf", parts.train, **settings).model
    assert int(resumed.model.epochs_sampled.numpy()) == 6
    np.testing.assert_allclose(resumed.model.score(*pairs(parts)), straight.score(*pairs(parts)), atol=1e-4)


def test_conjugate_gradients_solve_a_positive_definite_system() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 40))
    matrix = a @ a.T + 3 * np.eye(40)
    rhs = rng.standard_normal((40, 4))
    x = conjugate_gradients(lambda v: tf.constant(matrix) @ v, tf.constant(rhs), tolerance=1e-10).numpy()
    np.testing.assert_allclose(x, np.linalg.solve(matrix, rhs), rtol=1e-6, atol=1e-8)


def test_link_draws_follow_the_matrix_normal_posterior() -> None:
    rng = np.random.default_rng(6)
    n, f, k, link_precision = 30, 5, 2, 4.0
    dense = (rng.random((n, f)) < 0.4) * rng.random((n, f))
    features = tf.sparse.from_dense(tf.constant(dense))
    targets = rng.standard_normal((n, k))
    precision = np.array([[2.0, 0.5], [0.5, 1.0]])
    draws = np.stack([
        link_draw(features, tf.constant(targets), tf.constant(precision), link_precision, tf.constant([s, 7], tf.int64)).numpy()
        for s in range(3000)
    ])  # fmt: skip
    a = dense.T @ dense + link_precision * np.eye(f)
    mean = np.linalg.solve(a, dense.T @ targets)
    row_covariance, column_covariance = np.linalg.inv(a), np.linalg.inv(precision)
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.03)
    # Covariance of column 0 across rows: A^-1 * Sigma[0, 0]; of row 0 across columns: A^-1[0, 0] * Sigma.
    np.testing.assert_allclose(np.cov(draws[:, :, 0].T), row_covariance * column_covariance[0, 0], atol=0.01)
    np.testing.assert_allclose(np.cov(draws[:, 0, :].T), row_covariance[0, 0] * column_covariance, atol=0.01)


def test_implicit_features_are_each_rows_rated_columns_at_unit_norm(small) -> None:
    model = tfrec.models.build("bayesian_mf", small)
    assert model.num_ratings == len(small) and int(tf.reduce_min(model.pattern)) >= 1
    for users in (True, False):
        dense = tf.sparse.to_dense(model._pattern(users)).numpy()
        assert dense.shape == (
            (small.num_users, small.num_items) if users else (small.num_items, small.num_users)
        )
        np.testing.assert_allclose(np.linalg.norm(dense, axis=1)[dense.any(axis=1)], 1.0, rtol=1e-9)
    counts = small.frame["user_id"].value_counts()
    first = str(np.asarray(model.user_vocabulary)[0])
    assert (tf.sparse.to_dense(model._pattern(True)).numpy()[0] > 0).sum() == counts[first]
    plain = tfrec.models.build("bayesian_mf", small, implicit_feedback=False)
    assert plain.num_ratings == 0 and plain.pattern.shape[0] == 0
