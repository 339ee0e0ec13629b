"""tfrec: recommender models on TensorFlow/Keras.

Importing tfrec selects Keras 2 (``tf_keras``) for ``tf.keras``, which TensorFlow
Recommenders needs (see :mod:`tfrec._keras`), and quiets TensorFlow's C++ log unless
``TFREC_VERBOSE=1``. The submodules load on first use, so ``tfrec --help`` answers
without importing TensorFlow; if TensorFlow is already imported, the Keras binding is
checked at once.

Example:
    >>> import tfrec
    >>> data = tfrec.datasets.load("synthetic")
    >>> split = tfrec.data.split(data, "random:0.2")
    >>> model = tfrec.models.build("biased_mf", split.train)
"""

import importlib
import os
import sys

from tfrec import _quiet
from tfrec.errors import DataError, DatasetNotFoundError, TfrecError

os.environ["TF_USE_LEGACY_KERAS"] = "1"
if os.environ.get("TFREC_VERBOSE") != "1":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_quiet.install()
if "tensorflow" in sys.modules:  # tf.keras may already be bound: check (and fail clearly) now
    importlib.import_module("tfrec._keras")

from tfrec.version import __version__  # noqa: E402

_SUBMODULES = ("data", "datasets", "evaluation", "models", "optimizers", "serving", "training", "tuning")
_FUNCTIONS = {"evaluate": "tfrec.evaluation", "export": "tfrec.serving"}

__all__ = [
    "DataError",
    "DatasetNotFoundError",
    "TfrecError",
    "__version__",
    *sorted(_FUNCTIONS),
    *_SUBMODULES,
]


def __getattr__(name: str):
    """Loads a submodule (``tfrec.models``) or public function (``tfrec.evaluate``) on first use."""
    if name in _SUBMODULES:
        importlib.import_module("tfrec._keras")
        return importlib.import_module(f"tfrec.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'tfrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
