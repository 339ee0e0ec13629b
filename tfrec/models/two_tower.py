"""Two-tower retrieval: query and candidate towers over ids and side features."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec.data.derived import AUTO
from tfrec.data.interactions import Interactions
from tfrec.data.model_data import ModelData
from tfrec.models.heads import OBJECTIVE_RULES
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive, positive_int, register
from tfrec.models.retrieval import RetrievalModel, retrieval_objective
from tfrec.models.towers import IdTower


@dataclass(frozen=True)
class TwoTowerConfig:
    """Hyperparameters of :class:`TwoTower` and its training recipe (defaults: bench/TUNING.md).

    Attributes:
        embedding_dim: Width of the id embeddings.
        hidden_units: Dense layers of each tower; the last is the output dimension.
            Empty: the id embedding (plus features) is the output.
        user_features: User-table columns for the query tower; ``("auto",)`` takes
            whichever of age, gender, occupation exist; ``first_seen`` is the bucketed
            time of the user's first training interaction. Numeric columns are
            bucketed into deciles; ``a|b`` strings are multi-valued.
        item_features: Item-table columns for the candidate tower; ``("auto",)`` takes
            genres when present; ``first_seen`` as for users.
        dropout: Dropout between tower layers.
        l2: L2 weight on the batch's tower outputs.
        loss: ``softmax`` (in-batch, TFRS Retrieval) or ``bpr``.
        temperature: Softmax temperature.
        logq_correction: Log-Q correction of in-batch logits (on by default).
        num_hard_negatives: Keep only this many hardest negatives per query (0: all).
        extra_negatives: Uniformly sampled items added to every batch's candidates.
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Positives per batch.
    """

    embedding_dim: int = 32
    hidden_units: tuple[int, ...] = ()
    user_features: tuple[str, ...] = (AUTO,)
    item_features: tuple[str, ...] = (AUTO,)
    dropout: float = 0.0
    l2: float = 0.0
    loss: str = "softmax"
    temperature: float = 1.0
    logq_correction: bool = True
    num_hard_negatives: int = 0
    extra_negatives: int = 0
    learning_rate: float = 5e-3
    epochs: int = 5
    batch_size: int = 1024

    def __post_init__(self) -> None:
        check(
            self,
            {
                "embedding_dim": (positive_int, "a positive integer"),
                "hidden_units": (lambda v: all(positive_int(u) for u in v), "positive integers"),
                "user_features": (lambda v: all(isinstance(f, str) and f for f in v), "column names"),
                "item_features": (lambda v: all(isinstance(f, str) and f for f in v), "column names"),
                "dropout": (lambda v: non_negative(v) and v < 1, "a number in [0, 1)"),
                "l2": (non_negative, "a number >= 0"),
                "num_hard_negatives": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
                "extra_negatives": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
                "temperature": (positive, "a number > 0"),
                **OBJECTIVE_RULES,
                **TRAINING_RULES,
            },
        )


@register(
    "two_tower",
    config=TwoTowerConfig,
    task="retrieval",
    description="Two-tower retrieval: id + side-feature towers, in-batch softmax with log-Q, hard/extra negatives",
    paper="Yi et al., Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations, RecSys 2019",
)
class TwoTower(RetrievalModel):
    """``score(user, item) = <query_tower(user), candidate_tower(item)>``.

    Each tower embeds the raw id, adds the embeddings of the id's side features (user
    age, gender, occupation, first-seen time; item genres, first-seen time) and passes
    the sum through optional dense layers. Trained with TFRS's ``Retrieval`` task (in-batch
    softmax, temperature, log-Q correction, accidental hits removed, optional hard
    negatives and extra uniform negatives). ``similar_items`` ranks items by cosine
    similarity of their candidate-tower outputs.

    Example:
        >>> model = tfrec.models.build("two_tower", split.train, hidden_units=(64,))
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
        >>> model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=10)
        >>> model.similar_items(["1"], k=5)
    """

    def __init__(self, config: TwoTowerConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        tower = {"embedding_dim": c.embedding_dim, "hidden_units": c.hidden_units, "dropout": c.dropout}
        self.query_tower = IdTower(self.data.users, features=self.data.user_features, name="query_tower", **tower)
        self.candidate_tower = IdTower(
            self.data.items, features=self.data.item_features, name="candidate_tower", **tower
        )
        self.objective = retrieval_objective(
            c, self.data.item_counts, num_hard_negatives=c.num_hard_negatives, extra_negatives=c.extra_negatives
        )

    @classmethod
    def prepare(cls, train: Interactions, config: TwoTowerConfig) -> ModelData:
        """Vocabularies, counts and the side features the config asks for."""
        return ModelData.of(
            train, model=cls.registry_name, user_features=config.user_features, item_features=config.item_features
        )
