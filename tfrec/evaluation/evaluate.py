"""``tfrec.evaluate``: one call, one flat dict of metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfrec.data.interactions import ITEM, RATING, USER, Interactions
from tfrec.errors import DataError
from tfrec.evaluation.rating import mae, rmse
from tfrec.models.registry import task_of


def evaluate(
    model,
    train: Interactions,
    test: Interactions,
    *,
    k: Sequence[int] = (10, 20),
    batch_size: int = 8192,
) -> dict[str, float]:
    """Evaluates a trained model on a test split.

    Rating models report ``rmse`` and ``mae`` on the test ratings.

    Args:
        model: A trained tfrec model.
        train: The training split (items to exclude in ranking protocols).
        test: The test split.
        k: Cut-offs for top-K metrics.
        batch_size: Pairs scored per call.

    Returns:
        A flat dict of metric name to value, e.g. ``{"rmse": 0.91, "mae": 0.72}``.

    Example:
        >>> tfrec.evaluate(model, split.train, split.test)
    """
    del train, k  # used by the ranking protocols
    task = task_of(model)
    if task == "rating":
        if not test.has_ratings:
            raise DataError(f"{test.name} has no ratings to evaluate a rating model on")
        frame = test.frame
        predictions = []
        for start in range(0, len(frame), batch_size):
            chunk = frame.iloc[start : start + batch_size]
            predictions.append(model.score(chunk[USER].to_numpy(), chunk[ITEM].to_numpy()))
        predicted = np.concatenate(predictions)
        return {"rmse": rmse(frame[RATING], predicted), "mae": mae(frame[RATING], predicted)}
    raise DataError(f"no evaluation protocol for task {task!r} yet")
