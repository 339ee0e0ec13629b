"""Train/test splits: random, temporal, leave-last-out, predefined folds, cold items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfrec.data.interactions import ITEM, TIMESTAMP, USER, Interactions, as_interactions
from tfrec.errors import DataError, TfrecError

SPEC_FORMS = ("random:F", "temporal:F", "leave-last-out", "fold:NAME", "cold-items:F")


@dataclass(frozen=True)
class Split:
    """A train/test pair of Interactions and the spec that made it; with a validation
    spec, ``validation`` is held out of the training part (``test`` is untouched)."""

    train: Interactions
    test: Interactions
    spec: str
    validation: Interactions | None = None


def _fraction(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise TfrecError(f"{what}: the test fraction must be between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def _by_mask(data: Interactions, test_mask: np.ndarray, spec: str) -> Split:
    if test_mask.all() or not test_mask.any():
        side = "training" if test_mask.all() else "test"
        raise DataError(f"split {spec!r} of {data.name} leaves the {side} part empty ({len(data)} rows)")
    frame = data.frame
    return Split(
        train=data.with_frame(frame[~test_mask], f"{data.name}/train"),
        test=data.with_frame(frame[test_mask], f"{data.name}/test"),
        spec=spec,
    )


def random_split(data: Interactions, test_fraction: float = 0.2, *, seed: int = 0) -> Split:
    """Puts a seeded random ``test_fraction`` of the interactions into the test part."""
    test_fraction = _fraction(test_fraction, "random split")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(data), dtype=bool)
    mask[rng.permutation(len(data))[: int(round(test_fraction * len(data)))]] = True
    return _by_mask(data, mask, f"random:{test_fraction:g}")


def temporal_split(data: Interactions, test_fraction: float = 0.2) -> Split:
    """Global cut by time: the latest ``test_fraction`` of interactions become the test part."""
    test_fraction = _fraction(test_fraction, "temporal split")
    if not data.has_timestamps:
        raise DataError(f"temporal split needs timestamps; {data.name} has none")
    order = np.argsort(data.frame[TIMESTAMP].to_numpy(), kind="stable")
    mask = np.zeros(len(data), dtype=bool)
    mask[order[len(data) - int(round(test_fraction * len(data))) :]] = True
    return _by_mask(data, mask, f"temporal:{test_fraction:g}")


def leave_last_out(data: Interactions, *, seed: int = 0) -> Split:
    """Each user's latest interaction is the test item (users with one interaction stay in train).

    Without timestamps (CiteULike-t), a seeded random interaction of each user is held out.
    Ties in time go to the row that comes last in the data.
    """
    frame = data.frame
    users = frame[USER].to_numpy()
    if data.has_timestamps:
        key = frame[TIMESTAMP].to_numpy()
    else:
        key = np.random.default_rng(seed).random(len(frame))
    order = np.lexsort((np.arange(len(frame)), key, users))
    sorted_users = users[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_users[1:] != sorted_users[:-1]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_users[1:] != sorted_users[:-1]
    mask = np.zeros(len(frame), dtype=bool)
    mask[order[last & ~first]] = True
    return _by_mask(data, mask, "leave-last-out")


def cold_items(data: Interactions, test_fraction: float = 0.2, *, seed: int = 0) -> Split:
    """Holds out a seeded ``test_fraction`` of items with all their interactions (item cold start)."""
    test_fraction = _fraction(test_fraction, "cold-items split")
    items = data.item_ids
    rng = np.random.default_rng(seed)
    held = items[rng.permutation(len(items))[: int(round(test_fraction * len(items)))]]
    mask = data.frame[ITEM].isin(held).to_numpy()
    return _by_mask(data, mask, f"cold-items:{test_fraction:g}")


def fold(data: Interactions, name: str) -> Split:
    """The dataset's predefined fold ``name`` (ML-100K ``u1``..``u5``/``ua``/``ub``, CiteULike-t ``P1_1``...)."""
    if name not in data.folds:
        allowed = sorted(data.folds) or "none (this dataset has no predefined folds)"
        raise TfrecError(f"unknown fold {name!r} for {data.name}; available: {allowed}")
    train, test = data.folds[name]()
    return Split(train=train, test=test, spec=f"fold:{name}")


def split(data: Interactions, spec: str, *, seed: int = 0, validation: str | None = None) -> Split:
    """Splits by a spec string: ``random:0.2``, ``temporal:0.2``, ``leave-last-out``, ``fold:u1``, ``cold-items:0.2``.

    Args:
        data: The interactions to split.
        spec: The split spec.
        seed: Seed for the random parts.
        validation: A second spec (any form but ``fold``) applied to the training part:
            what it holds out becomes ``validation``, the rest ``train``; choose settings
            on it and touch ``test`` once.

    Returns:
        A :class:`Split`.

    Raises:
        TfrecError: an unknown or malformed spec, listing the allowed forms.

    Example:
        >>> parts = tfrec.data.split(data, "leave-last-out", validation="leave-last-out")
    """
    data = as_interactions(data)
    outer = _split(data, spec, seed)
    if validation is None:
        return outer
    if str(validation).startswith("fold"):
        raise TfrecError(f"bad validation spec {validation!r}: predefined folds split the whole data, not a part")
    inner = _split(outer.train, validation, seed + 1)
    return Split(
        train=inner.train.with_frame(inner.train.frame, f"{data.name}/train"),
        test=outer.test,
        spec=f"{outer.spec} + validation {inner.spec}",
        validation=inner.test.with_frame(inner.test.frame, f"{data.name}/validation"),
    )


def _split(data: Interactions, spec: str, seed: int) -> Split:
    kind, _, arg = str(spec).partition(":")
    try:
        if kind == "random" and arg:
            return random_split(data, float(arg), seed=seed)
        if kind == "temporal" and arg:
            return temporal_split(data, float(arg))
        if kind == "cold-items" and arg:
            return cold_items(data, float(arg), seed=seed)
    except ValueError as err:
        if isinstance(err, TfrecError):
            raise
        raise TfrecError(f"bad split spec {spec!r}: {arg!r} is not a number") from err
    if kind == "leave-last-out" and not arg:
        return leave_last_out(data, seed=seed)
    if kind == "fold" and arg:
        return fold(data, arg)
    raise TfrecError(f"bad split spec {spec!r}; allowed forms: {', '.join(SPEC_FORMS)}")
