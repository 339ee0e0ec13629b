"""Deep matrix factorization: latent factors passed through non-linear towers."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import tf
from tfrec.core.distribute import l2_penalty
from tfrec.models.heads import OBJECTIVE_RULES, RatingHead
from tfrec.models.registry import TRAINING_RULES, check, non_negative, one_of, positive_int, register
from tfrec.models.retrieval import RetrievalModel, retrieval_objective
from tfrec.models.towers import IdTower

FEEDBACK = ("explicit", "implicit")


@dataclass(frozen=True)
class DeepMFConfig:
    """Hyperparameters of :class:`DeepMF` and its training recipe.

    Attributes:
        feedback: ``explicit`` (regress ratings) or ``implicit`` (retrieval).
        embedding_dim: Width of the id embeddings.
        hidden_units: Tower layer widths; the last is the factor dimension.
        activation: Activation of the hidden layers.
        dropout: Dropout between tower layers.
        l2: L2 weight on the batch's tower outputs (and biases, explicit).
        loss: Implicit objective: ``softmax`` or ``bpr``.
        temperature: Softmax temperature (implicit).
        logq_correction: Log-Q correction of in-batch logits (implicit).
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Examples per batch.
    """

    feedback: str = "explicit"
    embedding_dim: int = 64
    hidden_units: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    dropout: float = 0.0
    l2: float = 0.05
    loss: str = "softmax"
    temperature: float = 0.2
    logq_correction: bool = True
    learning_rate: float = 1e-3
    epochs: int = 5
    batch_size: int = 512

    def __post_init__(self) -> None:
        check(
            self,
            {
                "feedback": one_of(*FEEDBACK),
                "embedding_dim": (positive_int, "a positive integer"),
                "hidden_units": (lambda v: all(positive_int(u) for u in v), "positive integers"),
                "activation": one_of("relu", "gelu", "tanh", "selu", "swish"),
                "dropout": (lambda v: non_negative(v) and v < 1, "a number in [0, 1)"),
                "l2": (non_negative, "a number >= 0"),
                **OBJECTIVE_RULES,
                **TRAINING_RULES,
            },
        )


@register(
    "deep_mf",
    config=DeepMFConfig,
    task="rating",
    description="Deep MF: id embeddings through non-linear towers; ratings (explicit) or retrieval (implicit)",
    paper="Xue et al., Deep Matrix Factorization Models for Recommender Systems, IJCAI 2017",
)
class DeepMF(RetrievalModel):
    """User and item factors computed by MLP towers over id embeddings.

    Explicit feedback: ``rating = mu + b_u + b_i + <f(e_u), g(e_i)>`` (a :class:`RatingHead`),
    trained with MSE. Implicit feedback: ``score = <f(e_u), g(e_i)>``, trained by the
    retrieval objective like ``implicit_mf``. Either way the score is a dot product of the
    towers' outputs, so top-K retrieval and serving use the same index.

    Example:
        >>> model = tfrec.models.build("deep_mf", split.train, hidden_units=(128, 64))
    """

    def __init__(self, config: DeepMFConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        tower = {"embedding_dim": c.embedding_dim, "hidden_units": c.hidden_units,
                 "activation": c.activation, "dropout": c.dropout}  # fmt: skip
        self.query_tower = IdTower(self.data.users, name="query_tower", **tower)
        self.candidate_tower = IdTower(self.data.items, name="candidate_tower", **tower)
        if c.feedback == "explicit":
            self.head = RatingHead(len(self.data.users), len(self.data.items), self.data.ratings, name="rating_head")
        else:
            self.head = None
            self.objective = retrieval_objective(c, self.data.item_counts)

    @classmethod
    def task_for(cls, config: DeepMFConfig) -> str:
        return "rating" if config.feedback == "explicit" else "retrieval"

    # === Towers ===
    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Explicit: ``[f(e_u), 1, mu + b_u]``; implicit: ``f(e_u)``."""
        factors = self.query_tower.from_index(index, training=training)
        return factors if self.head is None else self.head.query(factors, self.head.user_part(index))

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Explicit: ``[g(e_i), b_i, 1]``; implicit: ``g(e_i)``."""
        factors = self.candidate_tower.from_index(index, training=training)
        return factors if self.head is None else self.head.candidate(factors, self.head.item_part(index))

    # === Forward ===
    def _rating(self, features, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        users, items = self.user_index(features["user_id"]), self.item_index(features["item_id"])
        p, b_u = self.query_tower.from_index(users, training=training), self.head.user_part(users)
        q, b_i = self.candidate_tower.from_index(items, training=training), self.head.item_part(items)
        return self.head.rating(p, b_u, q, b_i), l2_penalty(self.config.l2, p, q, b_u, b_i)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        if self.head is None:
            return super().call(inputs, training=training)
        return self.head.predict(self._rating(inputs, training)[0], training)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        if self.head is None:
            return super().compute_loss(inputs, training=training)
        features, labels = inputs
        rating, penalty = self._rating(features, training)
        return self.head.loss(labels, rating) + penalty
