"""The neural CF family (gmf, mlp, neumf): NeuMF's pre-trained initialisation, scoring paths."""

from __future__ import annotations

import numpy as np
import pytest

import tfrec
from tfrec._keras import tf


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
