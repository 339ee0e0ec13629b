"""Implicit-feedback matrix factorization for top-K retrieval."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import tf
from tfrec.models.heads import OBJECTIVE_RULES
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive, positive_int, register
from tfrec.models.retrieval import RetrievalModel, retrieval_objective
from tfrec.models.towers import IdTower


@dataclass(frozen=True)
class ImplicitMFConfig:
    """Hyperparameters of :class:`ImplicitMF` and its training recipe (defaults: bench/TUNING.md).

    Attributes:
        embedding_dim: Latent factors per user and item.
        loss: ``softmax`` (in-batch, TFRS Retrieval) or ``bpr``.
        temperature: Softmax temperature (logits are divided by it).
        logq_correction: Subtract log sampling probability from in-batch logits.
        l2: L2 weight on the batch's user and item factors.
        init_stddev: Standard deviation of the factors' initialisation.
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Positives per batch (the in-batch negatives per positive).
    """

    embedding_dim: int = 32
    loss: str = "softmax"
    temperature: float = 1.0
    logq_correction: bool = True
    l2: float = 0.0
    init_stddev: float = 0.1
    learning_rate: float = 5e-3
    epochs: int = 20
    batch_size: int = 256

    def __post_init__(self) -> None:
        check(
            self,
            {
                "embedding_dim": (positive_int, "a positive integer"),
                "l2": (non_negative, "a number >= 0"),
                "init_stddev": (positive, "a number > 0"),
                **OBJECTIVE_RULES,
                **TRAINING_RULES,
            },
        )


@register(
    "implicit_mf",
    config=ImplicitMFConfig,
    task="retrieval",
    description="Implicit MF: id embeddings, dot product, in-batch softmax with log-Q (or BPR)",
    paper="Hu, Koren & Volinsky 2008 (implicit MF); Yi et al. 2019 (log-Q); Rendle et al. 2009 (BPR)",
)
class ImplicitMF(RetrievalModel):
    """score(user, item) = <p_u, q_i>, learned from implicit interactions.

    Example:
        >>> model = tfrec.models.build("implicit_mf", split.train)
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
        >>> model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=10)
        >>> model.recommend(["u1"], k=10)
    """

    @classmethod
    def stream_fields(cls, config) -> tuple[str, ...]:
        """Streams from files: ids (and, for rating models, the rating) are all it trains on."""
        return ()

    def __init__(self, config: ImplicitMFConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        tower = {"embedding_dim": c.embedding_dim, "init_stddev": c.init_stddev}
        self.query_tower = IdTower(self.data.users, name="query_tower", **tower)
        self.candidate_tower = IdTower(self.data.items, name="candidate_tower", **tower)
        self.objective = retrieval_objective(c, self.data.item_counts)

    def catalogue_parts(self) -> list[tf.Tensor]:
        """The item embedding table."""
        return [self.candidate_tower.table()]
