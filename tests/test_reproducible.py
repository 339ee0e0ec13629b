"""Same seed, same split, same sampled negatives, same metrics (CPU, float tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

import tfrec
from tfrec.data import split
from tfrec.training import train


@pytest.mark.parametrize("name", ["two_tower", "gmf"])
def test_same_seed_same_metrics(small, name) -> None:
    def run(seed):
        parts = split(small, "leave-last-out", seed=seed)
        model = train(name, parts.train, seed=seed, epochs=1, verbose=0).model
        return tfrec.evaluate(model, parts.train, parts.test, k=[10], protocol="sampled:50", seed=seed)

    first, second, other = run(3), run(3), run(4)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_allclose(first[key], second[key], rtol=1e-5, atol=1e-7, err_msg=key)
    assert any(abs(first[k] - other[k]) > 1e-6 for k in first if k != "users")
