"""Querying an export the way TF Serving runs it (the v1 session signature path)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tfrec._keras import tf
from tfrec.errors import TfrecError


def _text(value: np.ndarray) -> np.ndarray:
    """A string tensor's bytes decoded to ``str`` (UTF-8); other arrays unchanged."""
    if value.dtype.kind != "O":
        return value
    flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value.ravel()]
    return np.asarray(flat, dtype=object).reshape(value.shape)


class ExportedModel:
    """An export loaded through ``tf.compat.v1.saved_model.loader.load``, run by signature.

    This is the path TF Serving itself takes (a session, the ``serve`` tag, signature
    tensors by name), so what it answers is what a TF Serving deployment answers. As a
    convenience that a server does not offer, a scalar ``k`` is sent as one value per row;
    a ``k`` above the export's ``max_k`` is refused (a server caps it).

    The export is checked before it is loaded (:func:`tfrec.serving.check_trusted`: tfrec's
    metadata, only the ops tfrec's exports use); ``trust=True`` skips that for a file you
    trust.

    Args:
        export_dir: A version directory, or a base directory (its largest version is used).

    Example:
        >>> served = tfrec.serving.ExportedModel("exports/two_tower")
        >>> served.run("recommend", user_id=["42"], k=5)["item_ids"]
    """

    def __init__(self, export_dir: str | os.PathLike, trust: bool = False) -> None:
        path = Path(export_dir)
        if not (path / "saved_model.pb").is_file():
            from tfrec.serving.exporter import versions

            numbered = versions(path)[::-1]
            if not numbered:
                raise TfrecError(
                    f"{path} holds no SavedModel version (expected {path}/<version>/saved_model.pb)"
                )
            path = path / str(numbered[0])
        self.path = path
        if not trust:
            from tfrec.serving.trust import check_trusted

            check_trusted(path)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        with self._graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(self._session, ["serve"], str(path))
        self.signatures = {k: v for k, v in meta.signature_def.items() if k != "__saved_model_init_op"}
        self._runners: dict[str, tuple] = {}
        from tfrec.serving.exporter import METADATA_FILE
        from tfrec.serving.warmup import ASSETS_EXTRA

        described = path / ASSETS_EXTRA / METADATA_FILE
        self.metadata = json.loads(described.read_text()) if described.is_file() else {}
        self.max_k = self.metadata.get("max_k")

    def _runner(self, signature: str) -> tuple:
        """``(inputs {name: (dtype, shape)}, output names, session callable)``, made once
        per signature and reused by every call."""
        if signature not in self._runners:
            spec = self.signatures[signature]
            names, outputs = sorted(spec.inputs), sorted(spec.outputs)
            inputs = {
                key: (tf.dtypes.as_dtype(spec.inputs[key].dtype), self.input_shape(signature, key)) for key in names
            }
            with self._graph.as_default():
                call = self._session.make_callable(
                    [spec.outputs[key].name for key in outputs], [spec.inputs[key].name for key in names]
                )
            self._runners[signature] = (inputs, outputs, call)
        return self._runners[signature]

    def run(self, signature: str, **inputs: Sequence | np.ndarray | int) -> dict[str, np.ndarray]:
        """Runs one signature with named inputs; returns its named outputs.

        String outputs (item ids) come back as ``str`` like the model's own methods
        return them, not as the ``bytes`` the session yields.

        Raises:
            TfrecError: an unknown signature, missing/unexpected inputs, or an input of
                the wrong type or fixed width.
        """
        if signature not in self.signatures:
            raise TfrecError(f"{self.path}: no signature {signature!r}; it has {sorted(self.signatures)}")
        specs, outputs, call = self._runner(signature)
        if set(inputs) != set(specs):
            raise TfrecError(f"signature {signature!r} takes inputs {sorted(specs)}, got {sorted(inputs)}")
        if "k" in inputs:
            inputs = {**inputs, "k": self._per_row_k(signature, inputs)}
        feed = []
        for key, (dtype, shape) in specs.items():
            value = inputs[key]
            if dtype == tf.string:
                array = np.asarray(value, dtype=object)
                if not all(isinstance(v, (str, bytes)) for v in array.ravel()):
                    raise TfrecError(f"signature {signature!r}: {key} must be strings")
            else:
                given = np.asarray(value)
                if dtype.is_integer and (given.dtype.kind not in "iu" or given.dtype == bool):
                    raise TfrecError(f"signature {signature!r}: {key} must be an integer, got {value!r}")
                try:
                    array = np.asarray(value, dtype=dtype.as_numpy_dtype)
                except (TypeError, ValueError) as err:
                    raise TfrecError(f"signature {signature!r}: {key} must be {dtype.name}: {err}") from err
            if array.ndim == len(shape) and any(w not in (None, g) for w, g in zip(shape, array.shape)):
                wanted = "[" + ", ".join("B" if d is None else str(d) for d in shape) + "]"
                raise TfrecError(
                    f"signature {signature!r}: {key} must have shape {wanted}, got {list(array.shape)}"
                    + (' (pad each row with "")' if array.dtype.kind == "O" else "")
                )
            feed.append(array)
        return {key: _text(value) for key, value in zip(outputs, call(*feed))}

    def _per_row_k(self, signature: str, inputs: Mapping) -> np.ndarray:
        """``k`` as one value per row (a scalar repeated), refused above the export's most."""
        k = np.asarray(inputs["k"])
        if k.dtype.kind not in "iu" or k.ndim > 1:
            raise TfrecError(f"signature {signature!r}: k must be an integer or one integer per row, got {inputs['k']!r}")
        if k.size and int(k.min()) < 1:
            raise TfrecError(f"signature {signature!r}: k must be >= 1, got {int(k.min())}")
        most = self.metadata.get("max_similar_k" if signature == "similar_items" else "max_k")
        if most is not None and k.size and int(k.max()) > most:
            raise TfrecError(
                f"signature {signature!r}: k={int(k.max())} is more than this export answers ({most}, its "
                "max_k); export again with a larger max_k (--max-k)"
            )
        if k.ndim == 1:
            return k
        rows = next(len(np.asarray(v, dtype=object)) for key, v in inputs.items() if key != "k")
        return np.full(rows, k, np.int64)

    def input_shape(self, signature: str, name: str) -> list[int | None]:
        """The shape a signature's input takes (None: any size)."""
        dims = self.signatures[signature].inputs[name].tensor_shape.dim
        return [None if d.size < 0 else int(d.size) for d in dims]

    def describe(self) -> Mapping[str, dict]:
        """Each signature's input and output names."""
        return {
            name: {"inputs": sorted(s.inputs), "outputs": sorted(s.outputs)}
            for name, s in self.signatures.items()
        }

    def close(self) -> None:
        """Releases the session."""
        self._session.close()
