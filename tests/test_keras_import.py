"""tfrec chooses Keras 2 for tf.keras whatever the import order, or says what to do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


CHECK = (
    "import tensorflow as tf, tf_keras, tensorflow_recommenders as tfrs;"
    "assert tf.keras.__name__.startswith('tf_keras'), tf.keras.__name__;"
    "assert issubclass(tfrs.Model, tf_keras.Model);"
    "print('ok', tf.keras.__name__)"
)


@pytest.mark.parametrize(
    "prelude",
    [
        "import tfrec",
        "import tensorflow; import tfrec",
        "import tensorflow as tf; import numpy; import tfrec",
    ],
    ids=["fresh", "after-tensorflow", "after-tensorflow-and-numpy"],
)
def test_import_binds_keras_2(prelude: str) -> None:
    result = _run(f"{prelude}; {CHECK}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok tf_keras" in result.stdout


def test_import_after_keras_3_was_bound_says_what_to_do() -> None:
    result = _run("import tensorflow as tf; tf.keras.layers.Dense; import tfrec")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: tfrec needs tf.keras to be Keras 2")
    assert "TF_USE_LEGACY_KERAS=1" in last and "restart" in last
