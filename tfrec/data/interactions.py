"""The ``Interactions`` container: who interacted with what, plus side tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from tfrec.core.ids import id_text
from tfrec.errors import DataError

USER, ITEM, RATING, TIMESTAMP = "user_id", "item_id", "rating", "timestamp"
# How strongly the interaction happened (a play count, a purchase quantity): a number >= 0.
WEIGHT = "weight"
_MAX_SHOWN = 5


def _rows(mask: np.ndarray | pd.Series) -> str:
    """Formats the first offending row positions of a boolean mask."""
    rows = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(r) for r in rows[:_MAX_SHOWN])
    more = f" and {len(rows) - _MAX_SHOWN} more" if len(rows) > _MAX_SHOWN else ""
    return f"rows {shown}{more}"


# The longest id accepted (characters): real ids are far shorter, and one huge id must not
# decide how much memory every row takes.
MAX_ID_CHARS = 1024


def long_ids(strings: pd.Series, column: str, where: str) -> None:
    """Refuses ids longer than :data:`MAX_ID_CHARS`, naming the rows (one line)."""
    long = (strings.str.len() > MAX_ID_CHARS).to_numpy()
    if long.any():
        raise DataError(
            f"{where}: column {column!r} has ids longer than {MAX_ID_CHARS} characters at {_rows(long)} "
            f"(the longest: {int(strings.str.len().max()):,})"
        )


def nfc(strings: pd.Series) -> pd.Series:
    """Ids in Unicode normal form C: the composed and decomposed spellings of "José" are
    one id (ASCII ids, the usual case, pass unchanged)."""
    ascii_only = strings.str.isascii()
    if ascii_only.all():
        return strings
    out = strings.copy()
    out[~ascii_only] = strings[~ascii_only].str.normalize("NFC")
    return out


def _as_id_column(frame: pd.DataFrame, column: str, where: str) -> pd.Series:
    """Returns ``frame[column]`` as strings (Python objects: memory grows with the data),
    rejecting missing, empty and overlong ids.

    The rules: integers and whole floats give their integer text (``1``, ``1.0`` ->
    ``"1"``) in numeric and object columns alike; one value held as two types (``1`` and
    ``"1"``) is refused as ambiguous; text is normalised to Unicode NFC."""
    values = frame[column]
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(f"{where}: column {column!r} has missing ids at {_rows(missing)}")
    if values.dtype.kind in "iu":
        return values.astype(str)
    if values.dtype.kind == "f":
        numbers = values.to_numpy()
        finite = np.isfinite(numbers) & (np.abs(numbers) < 2.0**62)
        if not finite.all():
            raise DataError(
                f"{where}: column {column!r} holds non-finite or out-of-range numbers (e.g. 'inf') at "
                f"{_rows(~finite)}; ids must be strings or integers"
            )
        as_int = values.astype(np.int64)
        if not np.array_equal(as_int.to_numpy(), numbers):
            bad = as_int.to_numpy() != numbers
            raise DataError(
                f"{where}: column {column!r} holds non-integer floats at {_rows(bad)}; "
                "ids must be strings or integers"
            )
        return as_int.astype(str)
    strings = values.map(id_text) if values.dtype == object else nfc(values.astype(str))
    if values.dtype == object:  # one id held as text and as a number is ambiguous
        kinds = values.map(lambda v: "str" if isinstance(v, str) else type(v).__name__)
        per_id = kinds.groupby(strings.to_numpy()).agg(lambda k: sorted(set(k)))
        clash = per_id[per_id.map(len) > 1]
        if len(clash) and any("str" in k for k in clash):
            example = next(i for i, k in clash.items() if "str" in k)
            raise DataError(
                f"{where}: column {column!r} holds the same id as different types (e.g. {example!r} as "
                f"{clash[example]}); give every id one type (all strings or all integers)"
            )
    empty = (strings.str.len() == 0).to_numpy()
    if empty.any():
        raise DataError(f"{where}: column {column!r} has empty ids at {_rows(empty)}")
    long_ids(strings, column, where)
    return strings


def _seconds(values: pd.Series, where: str) -> pd.Series:
    """Datetime timestamps (naive: UTC; or zone-aware) as whole seconds since the epoch
    (floored); numbers pass unchanged."""
    if not (isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M"):
        return values
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(f"{where}: column {TIMESTAMP!r} has missing times (NaT) at {_rows(missing)}")
    utc = values.dt.tz_convert("UTC") if isinstance(values.dtype, pd.DatetimeTZDtype) else values.dt.tz_localize("UTC")
    return (utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions with optional ratings, timestamps and side tables.

    The frame is validated and normalized on construction: ``user_id``/``item_id`` become
    strings (integers and whole floats as integer text, Unicode text in NFC; one value
    held as two types, ``1`` and ``"1"``, is refused), ``rating`` and ``weight`` float32,
    ``timestamp`` int64 seconds (datetime columns converted; naive ones taken as UTC).

    Args:
        frame: One row per interaction with columns ``user_id``, ``item_id`` and
            optionally ``rating``, ``timestamp`` and ``weight`` (how strongly it happened,
            e.g. a play count: a number >= 0, the confidence of implicit feedback). Extra
            columns are kept.
        items: Optional item side table indexed by ``item_id`` (title, text, genres, ...).
        users: Optional user side table indexed by ``user_id``.
        name: A label for messages and metrics (usually the dataset name).
        folds: Predefined splits of the source dataset, name -> callable returning
            ``(train, test)`` Interactions (ML-100K ``u1``..``ub``, CiteULike-t ``P1_1``...).
        extras: Free-form metadata (e.g. the planted truth of the synthetic dataset).

    Raises:
        DataError: missing columns, missing or empty ids, missing/non-numeric/infinite
            ratings, non-integer timestamps, duplicate (user, item, timestamp) rows, or no
            rows at all. The message names the column and the first offending rows.

    Example:
        >>> import pandas as pd, tfrec
        >>> data = tfrec.data.Interactions(pd.DataFrame(
        ...     {"user_id": ["u1", "u2"], "item_id": ["i1", "i1"], "rating": [4.0, 3.5]}))
        >>> data.num_users, data.num_items
        (2, 1)
    """

    frame: pd.DataFrame
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    name: str = "interactions"
    folds: Mapping[str, Callable[[], tuple[Interactions, Interactions]]] = field(
        default_factory=dict, repr=False
    )
    extras: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", self._validated(self.frame))
        object.__setattr__(self, "items", self._side_table(self.items, ITEM, "items"))
        object.__setattr__(self, "users", self._side_table(self.users, USER, "users"))

    # === Validation ===
    def _validated(self, frame: pd.DataFrame) -> pd.DataFrame:
        where = f"Interactions({self.name})"
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
        missing = [c for c in (USER, ITEM) if c not in frame.columns]
        if missing:
            raise DataError(
                f"{where}: missing column(s) {missing}; required columns are "
                f"{[USER, ITEM]}, optional {[RATING, TIMESTAMP, WEIGHT]}; got {list(frame.columns)}"
            )
        if len(frame) == 0:
            raise DataError(f"{where}: no interactions (the frame has 0 rows)")
        out = frame.reset_index(drop=True).copy()
        out[USER] = _as_id_column(out, USER, where)
        out[ITEM] = _as_id_column(out, ITEM, where)
        if RATING in out.columns:
            rating = self._numeric(out[RATING], RATING, where)
            too_big = np.abs(rating) > np.finfo(np.float32).max
            if too_big.any():
                raise DataError(
                    f"{where}: column {RATING!r} has values beyond float32's range at {_rows(too_big)}"
                )
            out[RATING] = rating.astype(np.float32)
        if WEIGHT in out.columns:
            weight = self._numeric(out[WEIGHT], WEIGHT, where)
            bad = (weight < 0) | (weight > np.finfo(np.float32).max)
            if bad.any():
                raise DataError(
                    f"{where}: column {WEIGHT!r} must hold numbers >= 0 (within float32), not at {_rows(bad)}"
                )
            out[WEIGHT] = weight.astype(np.float32)
        if TIMESTAMP in out.columns:
            ts = self._numeric(_seconds(out[TIMESTAMP], where), TIMESTAMP, where)
            if ts.dtype.kind == "f" and not np.array_equal(ts, np.floor(ts)):
                raise DataError(
                    f"{where}: column {TIMESTAMP!r} must hold integers (seconds), "
                    f"non-integers at {_rows(ts != np.floor(ts))}"
                )
            out_of_range = np.abs(ts) > 2.0**62
            if out_of_range.any():
                raise DataError(
                    f"{where}: column {TIMESTAMP!r} has values beyond the int64 range at {_rows(out_of_range)}"
                )
            out[TIMESTAMP] = ts.astype(np.int64)
        key = [USER, ITEM] + ([TIMESTAMP] if TIMESTAMP in out.columns else [])
        dup = out.duplicated(key, keep="first").to_numpy()
        if dup.any():
            raise DataError(f"{where}: duplicate ({', '.join(key)}) at {_rows(dup)}")
        return out

    @staticmethod
    def _numeric(values: pd.Series, column: str, where: str) -> np.ndarray:
        numeric = pd.to_numeric(values, errors="coerce")
        not_numeric = (numeric.isna() & values.notna()).to_numpy()
        if not_numeric.any():
            first = values[not_numeric].iloc[0]
            raise DataError(
                f"{where}: column {column!r} has non-numeric values at "
                f"{_rows(not_numeric)} (first: {first!r})"
            )
        array = numeric.to_numpy(dtype=np.float64)
        nan = np.isnan(array)
        if nan.any():
            raise DataError(f"{where}: column {column!r} has missing values (NaN) at {_rows(nan)}")
        inf = np.isinf(array)
        if inf.any():
            raise DataError(f"{where}: column {column!r} has infinite values at {_rows(inf)}")
        return array

    def _side_table(self, table: pd.DataFrame | None, key: str, what: str) -> pd.DataFrame | None:
        if table is None:
            return None
        where = f"Interactions({self.name}).{what}"
        if not isinstance(table, pd.DataFrame):
            raise DataError(f"{where}: expected a pandas DataFrame, got {type(table).__name__}")
        if key in table.columns:
            table = table.set_index(key)
        if table.index.name != key:
            raise DataError(f"{where}: needs a {key!r} column or index")
        index = table.index.to_series().reset_index(drop=True)
        if index.isna().any():
            raise DataError(f"{where}: {key!r} has missing values at {_rows(index.isna())}")
        table = table.copy()
        table.index = pd.Index(_as_id_column(index.to_frame(key), key, where), name=key)
        dup = table.index.duplicated()
        if dup.any():
            raise DataError(f"{where}: duplicate {key!r} at {_rows(dup)}")
        return table

    # === Properties ===
    @property
    def has_ratings(self) -> bool:
        """Whether the interactions carry explicit ratings."""
        return RATING in self.frame.columns

    @property
    def has_weights(self) -> bool:
        """Whether the interactions carry weights (e.g. play counts)."""
        return WEIGHT in self.frame.columns

    @property
    def has_timestamps(self) -> bool:
        """Whether the interactions carry timestamps."""
        return TIMESTAMP in self.frame.columns

    @property
    def user_ids(self) -> np.ndarray:
        """The distinct user ids, sorted."""
        return np.sort(self.frame[USER].unique())

    @property
    def item_ids(self) -> np.ndarray:
        """The distinct item ids that have interactions, sorted."""
        return np.sort(self.frame[ITEM].unique())

    @property
    def num_users(self) -> int:
        """Number of distinct users with interactions."""
        return int(self.frame[USER].nunique())

    @property
    def num_items(self) -> int:
        """Number of distinct items with interactions."""
        return int(self.frame[ITEM].nunique())

    def __len__(self) -> int:
        return len(self.frame)

    def with_frame(self, frame: pd.DataFrame, name: str | None = None) -> Interactions:
        """Returns new Interactions over ``frame`` sharing this one's (validated) side tables."""
        new = object.__new__(Interactions)
        for item in fields(self):
            object.__setattr__(new, item.name, getattr(self, item.name))
        object.__setattr__(new, "name", name or self.name)
        object.__setattr__(new, "folds", {})
        object.__setattr__(new, "frame", new._validated(frame))
        return new

    def summary(self) -> str:
        """A one-line description for logs."""
        parts = [f"{len(self):,} interactions", f"{self.num_users:,} users", f"{self.num_items:,} items"]
        if self.has_ratings:
            parts.append(f"ratings {self.frame[RATING].min():g}-{self.frame[RATING].max():g}")
        return f"{self.name}: " + ", ".join(parts)


def as_interactions(data: Interactions | pd.DataFrame, what: str = "data") -> Interactions:
    """``data`` as :class:`Interactions`: a pandas DataFrame is validated into one.

    Every public entry point that takes interactions (``build``, ``split``,
    ``to_dataset``, ``evaluate``, ``train``) goes through this, so a user's own frame with
    ``user_id`` / ``item_id`` [/ ``rating`` / ``timestamp``] columns works everywhere.

    Raises:
        DataError: neither Interactions nor a DataFrame, or the frame is invalid (the
            message names the missing columns or the bad rows).
    """
    if isinstance(data, Interactions):
        return data
    if isinstance(data, pd.DataFrame):
        return Interactions(data, name=what)
    raise DataError(
        f"{what}: expected tfrec Interactions or a pandas DataFrame with columns "
        f"{[USER, ITEM]} (optional {[RATING, TIMESTAMP, WEIGHT]}), got {type(data).__name__}"
    )
