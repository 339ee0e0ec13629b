"""Implicit-feedback matrix factorization for top-K retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import to_dataset
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.base import Ids
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive, positive_int, register
from tfrec.models.retrieval import OBJECTIVE_RULES, RetrievalObjective
from tfrec.models.towers import IdTower


@dataclass(frozen=True)
class ImplicitMFConfig:
    """Hyperparameters of :class:`ImplicitMF` and its default training recipe.

    The defaults were chosen on ML-100K leave-last-out (bench/mf_quality.py): a small
    batch gives more updates per epoch, and more than ~10 epochs overfits.

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
    epochs: int = 10
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
@keras.utils.register_keras_serializable(package="tfrec")
class ImplicitMF(RetrievalObjective):
    """score(user, item) = <p_u, q_i>, learned from implicit interactions.

    Args:
        user_vocabulary: Known user ids.
        item_vocabulary: Known item ids (the retrieval catalogue).
        item_counts: Training interactions per item (aligned with ``item_vocabulary``),
            for the log-Q correction.
        embedding_dim: Latent factors.
        loss: ``softmax`` or ``bpr``.
        temperature: Softmax temperature.
        logq_correction: Whether to apply the log-Q correction.
        l2: L2 weight on the batch's factors.
        init_stddev: Initialisation scale.

    Example:
        >>> model = tfrec.models.build("implicit_mf", split.train)
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
        >>> model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=10)
        >>> model.recommend(["u1"], k=10)
    """

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        item_vocabulary: Sequence[str],
        item_counts: Sequence[int],
        embedding_dim: int = 32,
        loss: str = "softmax",
        temperature: float = 1.0,
        logq_correction: bool = True,
        l2: float = 0.0,
        init_stddev: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.item_vocabulary = Ids(item_vocabulary)
        self.item_counts = Ids(int(c) for c in item_counts)
        self.embedding_dim = int(embedding_dim)
        self.loss_name = loss
        self.temperature = float(temperature)
        self.logq_correction = bool(logq_correction)
        self.l2 = float(l2)
        self.init_stddev = float(init_stddev)
        # === Layers ===
        self.query_tower = IdTower(
            self.user_vocabulary, self.embedding_dim, init_stddev=self.init_stddev, name="query_tower"
        )
        self.candidate_tower = IdTower(
            self.item_vocabulary, self.embedding_dim, init_stddev=self.init_stddev, name="candidate_tower"
        )
        self._setup_objective(self.item_counts, loss, self.temperature, self.logq_correction, self.l2)

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: ImplicitMFConfig) -> ImplicitMF:
        """Builds the model for a training split (vocabularies and item counts from it)."""
        vocabulary = Vocabulary.from_interactions(train)
        return cls(
            vocabulary.users,
            vocabulary.items,
            vocabulary.item_counts,
            embedding_dim=config.embedding_dim,
            loss=config.loss,
            temperature=config.temperature,
            logq_correction=config.logq_correction,
            l2=config.l2,
            init_stddev=config.init_stddev,
        )

    @staticmethod
    def training_data(train: Interactions, config: ImplicitMFConfig, seed: int = 0) -> tf.data.Dataset:
        """Batches of positive (user, item) pairs, reshuffled each epoch."""
        return to_dataset(train, batch_size=config.batch_size, seed=seed)

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            "item_vocabulary": list(self.item_vocabulary),
            "item_counts": list(self.item_counts),
            "embedding_dim": self.embedding_dim,
            "loss": self.loss_name,
            "temperature": self.temperature,
            "logq_correction": self.logq_correction,
            "l2": self.l2,
            "init_stddev": self.init_stddev,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> ImplicitMF:
        return cls(**config)
