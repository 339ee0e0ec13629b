"""Low-level readers of delimited text files: clear one-line errors naming the file, line
and bad bytes, instead of parser tracebacks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec.data.interactions import ITEM, RATING, TIMESTAMP, USER
from tfrec.errors import DataError


def read_table(
    path: Path,
    *,
    sep: str,
    names: list[str],
    encoding: str = "utf-8",
    header: bool = False,
    dtype: dict | None = None,
    required: tuple[str, ...] = (),
    text: str | None = None,
    quoted: bool | None = None,
) -> pd.DataFrame:
    """Reads a delimited file, turning format problems into errors naming file and line.

    Args:
        path: The file.
        sep: Field separator (single character).
        names: Expected field names, in order (checked against the header if any).
        encoding: Text encoding of the file.
        header: Whether the first line is a header naming the fields.
        dtype: pandas dtypes per field.
        required: Fields that may not be empty; a missing value there is reported with
            the file's line number (a truncated line, a wrong separator).
        text: The file's content, when the caller already decoded it.
        quoted: Whether ``"`` quotes fields (default: for files with a header); False
            keeps quote characters as text.
    """
    source = io.StringIO(text) if text is not None else path
    try:
        frame = pd.read_csv(
            source,
            sep=sep,
            header=0 if header else None,
            names=None if header else names,
            encoding=None if text is not None else encoding,
            dtype=dtype if not header else None,
            keep_default_na=False,
            na_values=[""],
            quoting=csv.QUOTE_MINIMAL if (header if quoted is None else quoted) else csv.QUOTE_NONE,
            index_col=False,
            engine="c",
        )
    except UnicodeDecodeError as err:
        raise DataError(decode_problem(path, encoding, err)) from err
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty") from err
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(f"{path}: cannot parse as {sep!r}-separated {names}: {err}") from err
    if header:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise DataError(f"{path}: header is {list(frame.columns)}, missing column(s) {missing}")
    first_line = 2 if header else 1
    for column in required:
        empty = frame[column].isna().to_numpy()
        if empty.any():
            lines = ", ".join(str(i + first_line) for i in np.flatnonzero(empty)[:5])
            raise DataError(
                f"{path}: line(s) {lines} lack field {column!r}: expected {len(names)} "
                f"{sep!r}-separated fields {names} (truncated line or wrong separator?)"
            )
    if len(frame) == 0:
        raise DataError(f"{path}: the file is empty (no data rows)")
    return frame


def decode_problem(path: Path, encoding: str, err: UnicodeDecodeError) -> str:
    """Where in the file the first undecodable byte is (the parser's offset is per buffer)."""
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exact:
        err = exact
    line = raw[: err.start].count(b"\n") + 1
    return f"{path}: not valid {encoding} text ({err.reason} at byte {err.start}, line {line})"


def read_lines(path: Path) -> list[str]:
    """Reads a line-per-record file, tolerating CRLF; a trailing newline adds no record."""
    text = path.read_text(encoding="utf-8")
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_ratings_frame(path: Path, sep: str, encoding: str = "utf-8") -> pd.DataFrame:
    names = [USER, ITEM, RATING, TIMESTAMP]
    return read_table(path, sep=sep, names=names, encoding=encoding, required=tuple(names))


def read_double_colon(path: Path, names: list[str], encoding: str = "latin-1") -> pd.DataFrame:
    """Reads MovieLens 1M's ``::``-separated files with the fast C parser."""
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid {encoding} text") from err
    if "\t" in text:
        raise DataError(f"{path}: unexpected tab character; MovieLens 1M files use '::'")
    return read_table(path, sep="\t", names=names, text=text.replace("::", "\t"), required=tuple(names[:2]))


def with_text(items: pd.DataFrame, *parts: str) -> pd.DataFrame:
    """Adds the ``text`` column: the given string columns joined by spaces."""
    text = items[parts[0]].fillna("")
    for part in parts[1:]:
        text = text + " " + items[part].fillna("").str.replace("|", " ", regex=False)
    items["text"] = text.str.strip()
    return items
