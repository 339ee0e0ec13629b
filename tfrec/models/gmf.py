"""Generalized matrix factorization (GMF), the NCF paper's linear branch."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec.models.neural_cf import FACTORS_RULE, NeuralCF, NeuralCFConfig
from tfrec.models.registry import register


@dataclass(frozen=True)
class GMFConfig(NeuralCFConfig):
    """Hyperparameters of :class:`GMF` (plus the recipe of :class:`NeuralCFConfig`).

    Attributes:
        factors: Latent factors per user and item.
    """

    factors: int = 32

    def rules(self) -> dict:
        return {**super().rules(), "factors": FACTORS_RULE}


@register(
    "gmf",
    config=GMFConfig,
    task="ranking",
    description="GMF: element-wise product of id embeddings, weighted sum, BCE on sampled negatives",
    paper="He et al., Neural Collaborative Filtering, WWW 2017",
)
class GMF(NeuralCF):
    """``score(u, i) = sigmoid(h . (p_u * q_i) + b)``: MF with a learned weighting of factors.

    Example:
        >>> model = tfrec.models.build("gmf", split.train, factors=16)
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        >>> vocabulary = tfrec.data.Vocabulary.from_interactions(split.train)
        >>> model.fit(tfrec.data.with_negatives(split.train, vocabulary, num_negatives=4), epochs=20)
    """

    @classmethod
    def branches(cls, config: GMFConfig) -> tuple[int, tuple[int, ...]]:
        return config.factors, ()
