"""iALS: the closed-form solves match a dense NumPy solve of the same objective."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.ials import IALS, IALSConfig, confidences, pair_table
from tfrec.training import train


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    pairs = {(f"u{rng.integers(25)}", f"i{rng.integers(15)}") for _ in range(160)}
    frame = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"])
    frame["rating"] = rng.integers(1, 6, len(frame)).astype(float)
    return tfrec.data.Interactions(frame, name="tiny")


def _dense_user_solve(model: IALS, data, config: IALSConfig) -> np.ndarray:
    """Every user's exact solution with the item factors fixed, in NumPy (float64)."""
    vocabulary = Vocabulary.from_interactions(data)
    users, items, values = pair_table(data, vocabulary)
    weights = confidences(values, config.confidence, config.alpha).astype(np.float64)
    h = model.item_factors.numpy().astype(np.float64)
    gramian = h[1:].T @ h[1:]
    n_items, d = len(vocabulary.items), config.embedding_dim
    out = np.zeros((len(vocabulary.users) + 1, d))
    for u in range(1, len(vocabulary.users) + 1):
        mine = users == u
        hu, cu = h[items[mine]], weights[mine]
        reg = (
            config.regularization
            * (mine.sum() + config.unobserved_weight * n_items) ** config.regularization_exponent
        )
        a = config.unobserved_weight * gramian + (hu * cu[:, None]).T @ hu + reg * np.eye(d)
        out[u] = np.linalg.solve(a, (hu * cu[:, None]).sum(axis=0))
    return out


@pytest.mark.parametrize("solver, steps, tolerance", [("cholesky", 1, 1e-4), ("cg", 40, 1e-3)])
def test_a_user_half_sweep_equals_the_dense_solve(tiny, solver, steps, tolerance) -> None:
    config = IALSConfig(embedding_dim=6, solver=solver, cg_steps=steps, confidence="linear", alpha=0.5,
                        regularization=0.05, regularization_exponent=0.5, unobserved_weight=0.2,
                        init_stddev=0.3, batch_size=10)  # fmt: skip
    model = tfrec.models.build("ials", tiny, **{k: getattr(config, k) for k in (
        "embedding_dim", "solver", "cg_steps", "confidence", "alpha", "regularization",
        "regularization_exponent", "unobserved_weight", "init_stddev", "batch_size")})  # fmt: skip
    model.compile()
    want = _dense_user_solve(model, tiny, config)
    for element in IALS.training_data(tiny, config):
        if int(element["side"]) == 0:  # the user batches (three of ten rows, the last shorter)
            model.train_step(element)
    np.testing.assert_allclose(model.user_factors.numpy()[1:], want[1:], atol=tolerance, rtol=tolerance)


def test_sweeps_lower_the_objective_and_few_cg_steps_approach_the_exact_fit(tiny) -> None:
    common = {"embedding_dim": 8, "epochs": 6, "batch_size": 7, "init_stddev": 0.1}
    cg = train("ials", tiny, verbose=0, seed=1, solver="cg", cg_steps=3, **common)
    exact = train("ials", tiny, verbose=0, seed=1, solver="cholesky", **common)
    losses = np.asarray(cg.history["loss"])
    assert (np.diff(losses) <= 1e-4 * np.abs(losses[:-1])).all(), losses
    assert abs(losses[-1] - exact.history["loss"][-1]) <= 0.05 * abs(exact.history["loss"][-1])


def test_confidence_transforms() -> None:
    values = np.asarray([1.0, 3.0, 0.0])
    np.testing.assert_allclose(confidences(values, "binary", 2.0), [2, 2, 2])
    np.testing.assert_allclose(confidences(values, "linear", 2.0), [2, 6, 0])
    np.testing.assert_allclose(confidences(values, "log", 2.0), 2 * np.log1p(values), rtol=1e-6)


def test_an_interrupted_fit_resumes_from_its_backup_and_ends_as_an_uninterrupted_one(small, tmp_path) -> None:
    from tfrec._keras import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt  # as if the process were stopped during the third sweep

    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        train("ials", small, epochs=4, seed=3, verbose=0, backup_dir=backup, callbacks=[Interrupt()])
    resumed = train("ials", small, epochs=4, seed=3, verbose=0, backup_dir=backup)
    assert resumed.epochs_run == [2, 3]  # the two finished sweeps were not run again
    whole = train("ials", small, epochs=4, seed=3, verbose=0)
    np.testing.assert_allclose(
        resumed.model.user_factors.numpy(), whole.model.user_factors.numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        resumed.model.item_factors.numpy(), whole.model.item_factors.numpy(), atol=1e-5
    )
