"""NeuMF: GMF and MLP branches fused under one output layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfrec.data.interactions import Interactions
from tfrec.models.gmf import GMF
from tfrec.models.mlp import MLP
from tfrec.models.neural_cf import FACTORS_RULE, MLP_LAYERS_RULE, NeuralCF, NeuralCFConfig
from tfrec.models.registry import boolean, register


@dataclass(frozen=True)
class NeuMFConfig(NeuralCFConfig):
    """Hyperparameters of :class:`NeuMF` (plus the recipe of :class:`NeuralCFConfig`).

    Attributes:
        factors: GMF latent factors.
        mlp_layers: MLP tower widths; user and item embeddings are each half the first.
        pretrain: First train a GMF and an MLP with the same shapes and recipe, then start
            NeuMF from their weights (the paper's initialisation).
        pretrain_alpha: Weight of the GMF branch in the initial output layer.
    """

    factors: int = 32
    mlp_layers: tuple[int, ...] = (64, 32, 16)
    pretrain: bool = False
    pretrain_alpha: float = 0.5

    def rules(self) -> dict:
        return {
            **super().rules(),
            "factors": FACTORS_RULE,
            "mlp_layers": MLP_LAYERS_RULE,
            "pretrain": (boolean, "true or false"),
            "pretrain_alpha": (lambda v: isinstance(v, (int, float)) and 0 <= v <= 1, "a number in [0, 1]"),
        }


@register(
    "neumf",
    config=NeuMFConfig,
    task="ranking",
    description="NeuMF: GMF and MLP branches under one output layer, optionally pre-trained",
    paper="He et al., Neural Collaborative Filtering, WWW 2017",
)
class NeuMF(NeuralCF):
    """``score(u, i) = sigmoid(h . [p_u * q_i, MLP([e_u, e_i])] + b)``.

    Example:
        >>> result = tfrec.training.train("neumf", split.train, pretrain=True)
    """

    @classmethod
    def branches(cls, config: NeuMFConfig) -> tuple[int, tuple[int, ...]]:
        return config.factors, config.mlp_layers

    def initialise_from(self, gmf: GMF, mlp: MLP, alpha: float = 0.5) -> None:
        """Copies trained GMF and MLP weights into this model (He et al., section 3.4.1).

        The embeddings are concatenated, the MLP layers copied, and the output layer is
        ``[alpha * h_gmf, (1 - alpha) * h_mlp]``.

        Raises:
            ValueError: the models' vocabularies or shapes differ from this model's.
        """
        if gmf.user_vocabulary != self.user_vocabulary or mlp.item_vocabulary != self.item_vocabulary:
            raise ValueError("initialise_from(): GMF and MLP must be trained on the same vocabulary")
        if gmf.gmf_dim != self.gmf_dim or mlp.mlp_layers != self.mlp_layers:
            raise ValueError("initialise_from(): GMF factors and MLP layers must match this model's")
        for mine, g, m in (
            (self.query_tower, gmf.query_tower, mlp.query_tower),
            (self.candidate_tower, gmf.candidate_tower, mlp.candidate_tower),
        ):
            mine.embedding.set_weights(
                [np.concatenate([g.embedding.get_weights()[0], m.embedding.get_weights()[0]], axis=1)]
            )
        for mine, theirs in zip(self.mlp, mlp.mlp):
            mine.set_weights(theirs.get_weights())
        (g_kernel, g_bias), (m_kernel, m_bias) = (
            gmf.output_layer.get_weights(),
            mlp.output_layer.get_weights(),
        )
        self.output_layer.set_weights(
            [
                np.concatenate([alpha * g_kernel, (1 - alpha) * m_kernel], axis=0),
                alpha * g_bias + (1 - alpha) * m_bias,
            ]
        )

    def before_fit(self, train: Interactions, pretrain: Callable[..., NeuralCF]) -> None:
        """With ``pretrain`` in the config: trains a GMF and an MLP with the same shapes and
        recipe (``pretrain(name, **overrides)``, the recipe's own training) and starts from
        their weights."""
        config = self.config
        if not config.pretrain:
            return
        shared = {
            k: getattr(config, k)
            for k in ("l2", "num_negatives", "sampler", "learning_rate", "epochs", "batch_size")
        }
        gmf = pretrain("gmf", factors=config.factors, **shared)
        mlp = pretrain("mlp", mlp_layers=config.mlp_layers, **shared)
        self.initialise_from(gmf, mlp, config.pretrain_alpha)
