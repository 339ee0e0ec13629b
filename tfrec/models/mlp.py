"""The NCF paper's MLP scorer: concatenated id embeddings through a ReLU tower."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import keras
from tfrec.models.neural_cf import NeuralCF, NeuralCFConfig
from tfrec.models.registry import register


@dataclass(frozen=True)
class MLPConfig(NeuralCFConfig):
    """Hyperparameters of :class:`MLP` (plus the recipe of :class:`NeuralCFConfig`).

    Attributes:
        mlp_layers: Tower widths; user and item embeddings are each half the first.
    """

    mlp_layers: tuple[int, ...] = (64, 32, 16)


@register(
    "mlp",
    config=MLPConfig,
    task="ranking",
    description="MLP: concatenated id embeddings through ReLU layers, BCE on sampled negatives",
    paper="He et al., Neural Collaborative Filtering, WWW 2017",
)
@keras.utils.register_keras_serializable(package="tfrec")
class MLP(NeuralCF):
    """``score(u, i) = sigmoid(h . MLP([e_u, e_i]) + b)``.

    Example:
        >>> model = tfrec.models.build("mlp", split.train, mlp_layers=(64, 32, 16, 8))
    """

    variant = "mlp"
