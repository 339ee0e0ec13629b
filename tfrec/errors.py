"""Exceptions tfrec raises for user errors.

Every user error is a ``ValueError`` subclass so callers can catch it the usual way; the
CLI prints it as one line without a traceback.
"""

from __future__ import annotations


class TfrecError(ValueError):
    """A user error: bad input data, bad arguments or bad configuration."""


class DataError(TfrecError):
    """Input data is missing, malformed or inconsistent."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset's files are not where they were looked for."""
