"""Rating-prediction error."""

from __future__ import annotations

import numpy as np

from tfrec.errors import TfrecError
from tfrec.evaluation.bootstrap import bootstrap_interval


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise TfrecError(f"{y_true.size} true ratings but {y_pred.size} predictions")
    if y_true.size == 0:
        raise TfrecError("no ratings to evaluate")
    return y_true, y_pred


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def error_difference(
    y_true, a, b, *, metric: str = "rmse", samples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float | str]:
    """Two sets of predicted ratings compared on one error, with a paired bootstrap
    interval over ratings.

    Each resample draws the same ratings for both; the interval is of ``error(a) -
    error(b)``, so a negative difference means ``a`` errs less. The verdict is ``better``
    (the interval is below 0), ``worse`` (above 0) or ``tie``.

    Args:
        y_true: The true ratings.
        a, b: Two predictions of them, in the same order.
        metric: ``rmse`` or ``mae``.
        samples: Bootstrap resamples.
        level: Interval coverage.
        seed: Seed of the resampling.

    Returns:
        ``{"metric", "a", "b", "difference", "low", "high", "level", "ratings", "verdict"}``.
    """
    if metric not in ("rmse", "mae"):
        raise TfrecError(f"metric must be 'rmse' or 'mae', got {metric!r}")
    y_true, a = _pair(y_true, a)
    _, b = _pair(y_true, b)
    errors = [(p - y_true) ** 2 if metric == "rmse" else np.abs(p - y_true) for p in (a, b)]
    finish = np.sqrt if metric == "rmse" else (lambda x: x)
    low, high = bootstrap_interval(
        errors, lambda x, y: finish(x) - finish(y), samples=samples, level=level, seed=seed
    )
    first, second = (float(finish(e.mean())) for e in errors)
    return {
        "metric": metric,
        "a": first,
        "b": second,
        "difference": first - second,
        "low": low,
        "high": high,
        "level": level,
        "ratings": len(y_true),
        "verdict": "better" if high < 0 else "worse" if low > 0 else "tie",
    }
