"""The one place that chooses the Keras implementation tfrec runs on.

TensorFlow Recommenders needs Keras 2 (the ``tf_keras`` package). TensorFlow picks the
implementation behind ``tf.keras`` the first time ``tf.keras`` is touched, reading the
``TF_USE_LEGACY_KERAS`` environment variable at that moment. ``import tfrec`` sets the
variable; this module imports TensorFlow and checks that ``tf.keras`` resolved to ``tf_keras``.
Every other tfrec module imports ``keras`` and ``tf`` from here.
"""

from __future__ import annotations

import os

# `import tfrec` (tfrec/__init__.py, always run before this module) has set
# TF_USE_LEGACY_KERAS=1 and the quiet log level and installed tfrec._quiet's hook.
VERBOSE = os.environ.get("TFREC_VERBOSE") == "1"

import tensorflow as tf  # noqa: E402

_FIX = (
    "tfrec needs tf.keras to be Keras 2 (the tf_keras package), but tf.keras in this "
    "process is already bound to {bound!r}. TensorFlow fixes the choice the first time "
    "tf.keras is used. Fix: restart the Python process (or Jupyter kernel) and either "
    "`import tfrec` before anything touches tf.keras, or set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before starting Python. Also make sure tf-keras is installed "
    "(`pip install tf-keras==2.21.0`)."
)


def _check_binding() -> None:
    try:
        import tf_keras  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tfrec needs the tf-keras package (Keras 2) for TensorFlow Recommenders: "
            "`pip install tf-keras==2.21.0`."
        ) from err
    try:
        bound = tf.keras.__name__
    except Exception as err:  # noqa: BLE001 - report whatever TF raised
        raise ImportError(_FIX.format(bound=f"<unresolvable: {err}>")) from err
    if not bound.startswith("tf_keras"):
        raise ImportError(_FIX.format(bound=bound))


_check_binding()

import tf_keras as keras  # noqa: E402

if not VERBOSE:
    # TensorFlow's Python-side notices (deprecations inside TF, retracing hints) are for
    # TensorFlow's developers; errors still print. TFREC_VERBOSE=1 shows everything.
    tf.get_logger().setLevel("ERROR")

__all__ = ["keras", "tf"]
