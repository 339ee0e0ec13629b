"""Ids held outside Keras tracking, string-id lookups with one OOV bucket, id conversion."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

from tfrec._keras import keras, tf
from tfrec.errors import TfrecError


class Ids:
    """A read-only sequence of ids (or counts) that Keras and ``tf.Module`` do not walk.

    Keras wraps a list attribute in a tracked ``ListWrapper`` and saving walks tracked
    lists and every attribute's nested structure element by element, many times over:
    with 1M-item vocabularies held as lists, exporting took ~7 minutes. This type is
    neither a list, a tuple nor a registered ``Sequence``, so ``tf.nest`` treats it as a
    leaf and Keras does not track it; ``get_config`` methods turn it back into a list.
    """

    __slots__ = ("_values",)

    def __init__(self, values) -> None:
        self._values = tuple(values)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self):
        return iter(self._values)

    def __getitem__(self, key):
        value = self._values[key]
        return list(value) if isinstance(key, slice) else value

    def __contains__(self, value) -> bool:
        return value in self._values

    def index(self, value) -> int:
        """Position of the first ``value`` (ValueError if absent), as ``list.index``."""
        return self._values.index(value)

    def count(self, value) -> int:
        return self._values.count(value)

    def __eq__(self, other) -> bool:
        if isinstance(other, (Ids, list, tuple)):
            return self._values == tuple(other)
        return NotImplemented

    __hash__ = None

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self._values, dtype=dtype if dtype is not None else object)

    def __repr__(self) -> str:
        return f"Ids({len(self._values)} values)"


@keras.utils.register_keras_serializable(package="tfrec")
class IdLookup(keras.layers.StringLookup):
    """A StringLookup over raw string ids with one OOV bucket at index 0.

    Unknown ids (new users, cold items, empty strings) map to index 0 and never fail.
    The vocabulary is kept as :class:`Ids` (not a tracked list) so saving stays fast on
    large catalogues.
    """

    def __init__(self, vocabulary: Sequence[str], **kwargs) -> None:
        kwargs.update(mask_token=None, num_oov_indices=1)
        super().__init__(vocabulary=list(vocabulary), **kwargs)
        self.input_vocabulary = Ids(vocabulary)  # replaces (and untracks) the list

    def get_config(self) -> dict:
        config = super().get_config()
        config["vocabulary"] = list(self.input_vocabulary)
        return config


def id_lookup(vocabulary: Sequence[str], name: str) -> IdLookup:
    """An :class:`IdLookup` (string ids to indices, 0 for unknown ids) named ``name``."""
    return IdLookup(vocabulary, name=name)


def known(indices: tf.Tensor) -> tf.Tensor:
    """1.0 where a looked-up index is in the vocabulary, 0.0 for the OOV bucket."""
    return tf.cast(indices > 0, tf.float32)


def id_text(value: object) -> str:
    """One id's text, by the rule every entry point uses: whole floats as integers
    (``1.0`` -> ``"1"``, as a float column gives), text in Unicode normal form C (the
    composed and decomposed spellings of "José" are one id), anything else ``str()``."""
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def as_strings(values: Sequence[str] | np.ndarray | tf.Tensor, what: str) -> tf.Tensor:
    """Converts raw ids to a 1-D string tensor (by :func:`id_text`'s rule), rejecting
    non-string tensors clearly."""
    if isinstance(values, tf.Tensor):
        if values.dtype != tf.string:
            raise TfrecError(f"{what} must be strings, got a {values.dtype.name} tensor")
        return tf.reshape(values, [-1])
    array = np.asarray(values, dtype=object).reshape(-1)
    return tf.constant([id_text(v) for v in array], dtype=tf.string, shape=[len(array)])
