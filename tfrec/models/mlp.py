"""The NCF paper's MLP scorer: concatenated id embeddings through a ReLU tower."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec.models.neural_cf import MLP_LAYERS_RULE, NeuralCF, NeuralCFConfig
from tfrec.models.registry import register


@dataclass(frozen=True)
class MLPConfig(NeuralCFConfig):
    """Hyperparameters of :class:`MLP` (plus the recipe of :class:`NeuralCFConfig`).

    Attributes:
        mlp_layers: Tower widths; user and item embeddings are each half the first.
    """

    mlp_layers: tuple[int, ...] = (128, 64, 32)

    def rules(self) -> dict:
        return {**super().rules(), "mlp_layers": MLP_LAYERS_RULE}


@register(
    "mlp",
    config=MLPConfig,
    task="ranking",
    description="MLP: concatenated id embeddings through ReLU layers, BCE on sampled negatives",
    paper="He et al., Neural Collaborative Filtering, WWW 2017",
)
class MLP(NeuralCF):
    """``score(u, i) = sigmoid(h . MLP([e_u, e_i]) + b)``.

    Example:
        >>> model = tfrec.models.build("mlp", split.train, mlp_layers=(64, 32, 16, 8))
    """

    @classmethod
    def branches(cls, config: MLPConfig) -> tuple[int, tuple[int, ...]]:
        return 0, config.mlp_layers
