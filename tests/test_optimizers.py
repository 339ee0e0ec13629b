"""LazyAdam: Keras's Adam on the rows a batch touches, nothing on the others."""

from __future__ import annotations

import numpy as np

import tfrec
from tfrec._keras import keras, tf


def _step(optimizer, table: tf.Variable, rows: list[int], dense: tf.Variable | None = None) -> None:
    with tf.GradientTape() as tape:
        picked = tf.gather(table, rows)  # a sparse (IndexedSlices) gradient
        loss = tf.reduce_sum(tf.square(picked - 1.0) * tf.range(1.0, 4.0))
        if dense is not None:
            loss += tf.reduce_sum(tf.square(dense - 2.0))
    variables = [table] + ([dense] if dense is not None else [])
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))


def _tables(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)


def test_first_step_equals_adam_including_repeated_rows_and_dense_weights() -> None:
    start, dense_start = _tables()
    results = []
    for optimizer in (keras.optimizers.Adam(0.1), tfrec.optimizers.LazyAdam(0.1)):
        table, dense = tf.Variable(start), tf.Variable(dense_start)
        _step(optimizer, table, [1, 3, 3, 5], dense)
        results.append((table.numpy(), dense.numpy()))
    np.testing.assert_allclose(
        results[0][0], results[1][0], rtol=1e-5, atol=2e-6
    )  # float32 rounding; a step moves by ~0.1
    np.testing.assert_allclose(
        results[0][1], results[1][1], rtol=1e-5, atol=2e-6
    )  # float32 rounding; a step moves by ~0.1
    assert not np.allclose(results[1][0][3], start[3])  # the rows were trained


def test_rows_outside_the_batch_stay_put_and_touched_rows_follow_adam_arithmetic() -> None:
    start, _ = _tables(1)
    table = tf.Variable(start)
    optimizer = tfrec.optimizers.LazyAdam(0.1)
    _step(optimizer, table, [0, 2])
    after_first = table.numpy()
    _step(optimizer, table, [2, 4])
    after_second = table.numpy()
    np.testing.assert_array_equal(after_second[0], after_first[0])  # Keras's Adam would move it
    np.testing.assert_array_equal(after_second[[1, 3, 5]], start[[1, 3, 5]])
    # Row 2, by hand: two Adam steps with bias correction.
    b1, b2, eps, lr = 0.9, 0.999, 1e-7, 0.1
    x, m, v = start[2].astype(np.float64), 0.0, 0.0
    for step in (1, 2):
        g = 2 * (x - 1.0) * np.arange(1.0, 4.0)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        x = x - lr * np.sqrt(1 - b2**step) / (1 - b1**step) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(after_second[2], x, rtol=1e-5)


def test_lazy_adam_round_trips_through_its_config() -> None:
    optimizer = tfrec.optimizers.LazyAdam(0.02, beta_1=0.8)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, tfrec.optimizers.LazyAdam)
    assert again.get_config()["beta_1"] == 0.8
    assert tfrec.optimizers.LazyAdam(0.02, catch_up=True).get_config()["catch_up"] is True


def test_catch_up_gives_a_skipped_row_the_momentum_step_dense_adam_gave_it() -> None:
    start, _ = _tables(2)
    results = []
    for optimizer in (keras.optimizers.Adam(0.1), tfrec.optimizers.LazyAdam(0.1, catch_up=True)):
        table = tf.Variable(start)
        _step(optimizer, table, [0, 2])
        _step(optimizer, table, [2, 4])  # row 0 sits out: dense Adam still moves it
        if isinstance(optimizer, tfrec.optimizers.LazyAdam):
            optimizer.catch_up_all()
        results.append(table.numpy())
    # One skipped step is caught up exactly (up to epsilon's place and float32 rounding).
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-5)


def test_catch_up_tracks_dense_adam_over_a_long_sparse_run() -> None:
    rng = np.random.default_rng(0)
    start = rng.normal(size=(50, 4)).astype(np.float32)
    target = tf.constant(rng.normal(size=(50, 4)).astype(np.float32))
    batches = [rng.choice(50, 3, replace=False) for _ in range(300)]

    def run(optimizer):
        table = tf.Variable(start)
        for rows in batches:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(tf.gather(table, rows) - tf.gather(target, rows)))
            optimizer.apply_gradients(zip(tape.gradient(loss, [table]), [table]))
        if getattr(optimizer, "catch_up", False):
            optimizer.catch_up_all()
        return table.numpy()

    dense = run(keras.optimizers.Adam(0.01))
    lazy_gap = np.abs(run(tfrec.optimizers.LazyAdam(0.01)) - dense).max()
    catch_up_gap = np.abs(run(tfrec.optimizers.LazyAdam(0.01, catch_up=True)) - dense).max()
    # Measured: 0.345 without catching up, 0.065 with it (early steps' bias correction).
    assert catch_up_gap < 0.3 * lazy_gap


def test_train_with_catch_up_applies_pending_steps_at_each_epoch_end() -> None:
    data = tfrec.datasets.synthetic(num_users=100, num_items=60, num_interactions=2_000, seed=0)
    result = tfrec.training.train("implicit_mf", data, epochs=2, catch_up=True, verbose=0)
    optimizer = result.model.optimizer
    assert optimizer.catch_up and optimizer._last_steps
    for _, last in optimizer._last_steps.values():  # every moved row brought up to the last step
        moved = last.numpy()[last.numpy() > 0]
        assert moved.size and (moved == float(optimizer.iterations.numpy())).all()


def test_catch_up_leaves_dense_gradient_weights_alone() -> None:
    start, _ = _tables(3)
    kernel_start = np.ones((3, 2), np.float32)
    results = []
    for optimizer in (tfrec.optimizers.LazyAdam(0.1), tfrec.optimizers.LazyAdam(0.1, catch_up=True)):
        table, kernel = tf.Variable(start), tf.Variable(kernel_start)
        for rows in ([0, 2], [2, 4]):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(tf.gather(table, rows) @ kernel - 1.0))
            optimizer.apply_gradients(zip(tape.gradient(loss, [table, kernel]), [table, kernel]))
        if optimizer.catch_up:
            optimizer.catch_up_all()
        results.append((table.numpy(), kernel.numpy()))
    # The 2-D kernel had a dense gradient every step: nothing is pending for it.
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert not np.allclose(results[1][0][0], results[0][0][0])  # row 0 caught up its skipped step
