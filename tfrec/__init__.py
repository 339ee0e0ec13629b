"""tfrec: recommender models on TensorFlow/Keras.

Importing tfrec selects Keras 2 (``tf_keras``) for ``tf.keras``, which TensorFlow
Recommenders needs; see :mod:`tfrec._keras`.

Example:
    >>> import tfrec
    >>> data = tfrec.datasets.load("synthetic")
    >>> split = tfrec.data.split(data, "random:0.2")
    >>> model = tfrec.models.build("biased_mf", split.train)
"""

from tfrec import (
    _keras,  # noqa: F401  (must come first: chooses the Keras implementation)
    data,
    datasets,
    evaluation,
    models,
    optimizers,
    serving,
    training,
)
from tfrec.errors import DataError, DatasetNotFoundError, TfrecError
from tfrec.evaluation import evaluate
from tfrec.serving import export

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "DatasetNotFoundError",
    "TfrecError",
    "__version__",
    "data",
    "datasets",
    "evaluate",
    "evaluation",
    "export",
    "models",
    "optimizers",
    "serving",
    "training",
]
