"""The bootstrap behind tfrec's intervals: resample rows, recompute a statistic of means."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def bootstrap_interval(
    columns: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    samples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``level`` interval of ``statistic(*means)`` over ``samples`` resamples of rows.

    Each resample draws the same rows (with replacement) from every column, so paired
    columns stay paired; ``statistic`` gets each column's mean per resample, as arrays.
    """
    size = len(columns[0])
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, samples, 256):
        rows = rng.integers(0, size, (min(256, samples - start), size))
        values.append(statistic(*(np.asarray(c)[rows].mean(axis=1) for c in columns)))
    low, high = np.quantile(np.concatenate(values), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
