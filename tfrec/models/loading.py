"""Loading a saved tfrec model from a file a user hands over, without running its code."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from tfrec.errors import TfrecError
from tfrec.models.registry import entry, names


def load(path: str | os.PathLike):
    """Loads a model saved with ``model.save("x.keras")``, refusing anything that could run code.

    Keras's ``safe_mode`` guards only the zip ``.keras`` format: an HDF5 file (whatever
    its name) or a SavedModel folder can carry a ``Lambda`` layer whose stored bytecode
    runs on load. So only a zip archive named ``*.keras`` is opened, with
    ``safe_mode=True``, and only when its config names a registered tfrec model.

    Args:
        path: The ``.keras`` file.

    Returns:
        The model with its trained weights (and seen items), uncompiled: ``compile`` it
        to train further; scoring, recommending and exporting need no compile.

    Raises:
        TfrecError: the path is missing or a folder, not a zip ``.keras`` archive, names
            a class that is not a registered tfrec model, or does not load; one line
            saying which.

    Example:
        >>> model = tfrec.models.load("runs/demo/model.keras")
    """
    from tfrec._keras import keras

    path = Path(path)
    if path.is_dir():
        raise TfrecError(f"{path} is a folder; expected a .keras file saved with model.save('x.keras')")
    if not path.is_file():
        raise TfrecError(f"no file {path}")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise TfrecError(
            f"{path} is not a zip .keras archive; tfrec loads only that format (HDF5 and "
            "SavedModel files can run code stored in them when loaded)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as err:
        raise TfrecError(f"{path} is not a saved Keras model (no readable config.json): {err}") from err
    registered = {entry(name).model_cls.__name__: name for name in names()}
    class_name = config.get("class_name") if isinstance(config, dict) else None
    module = str(config.get("registered_name") or "") if isinstance(config, dict) else ""
    if class_name not in registered or (module and not module.startswith("tfrec>")):
        raise TfrecError(
            f"{path} holds a {class_name or 'model'!s} ({module or 'unregistered'}), not a tfrec model; "
            f"expected one of {sorted(registered)}"
        )
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for a bad archive
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TfrecError(f"{path} does not load as a tfrec model: {message}") from err
