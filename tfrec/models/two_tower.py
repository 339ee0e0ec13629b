"""Two-tower retrieval: query and candidate towers over ids and side features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfrec._keras import tf
from tfrec.data.derived import AUTO
from tfrec.data.interactions import Interactions
from tfrec.data.model_data import ModelData
from tfrec.data.pipeline import to_dataset
from tfrec.models.capabilities import FeatureCandidates, HistoryQueries
from tfrec.models.features import CatalogueFeatures, HistoryPool, history_weights
from tfrec.models.heads import CONFIDENCES, OBJECTIVE_RULES
from tfrec.models.registry import (
    TRAINING_RULES,
    check,
    non_negative,
    one_of,
    positive,
    positive_int,
    register,
)
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
        dense_features: Numeric item-table columns (names or globs such as ``audio_*``)
            whose vector, normalized with the training items' statistics and projected
            to ``embedding_dim``, is added to the item embedding; items outside training
            that have a vector are embedded from it alone (cold start).
        history_length: Add the user's listening history to the query tower: the
            weighted mean of the candidate tower over their (up to this many) heaviest
            training items, weights ``log1p(weight)``; 0: off.
        id_dropout: The share of training rows whose item-id embedding (and, with a
            history, user-id embedding) is dropped, so features and histories alone must
            place them (what cold items and new users rely on).
        confidence: How an interaction's ``weight`` (a play count) weighs its positive in
            the loss: ``binary`` (not at all), ``linear`` or ``log``; data without
            weights counts every positive once.
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
    dense_features: tuple[str, ...] = ()
    dense_hidden_units: tuple[int, ...] = ()
    history_length: int = 0
    id_dropout: float = 0.0
    confidence: str = "binary"
    dropout: float = 0.0
    l2: float = 0.0
    loss: str = "softmax"
    temperature: float = 1.0
    logq_correction: bool = True
    num_hard_negatives: int = 0
    extra_negatives: int = 0
    learning_rate: float = 5e-3
    epochs: int = 10
    batch_size: int = 512

    def __post_init__(self) -> None:
        check(
            self,
            {
                "embedding_dim": (positive_int, "a positive integer"),
                "hidden_units": (lambda v: all(positive_int(u) for u in v), "positive integers"),
                "user_features": (lambda v: all(isinstance(f, str) and f for f in v), "column names"),
                "item_features": (lambda v: all(isinstance(f, str) and f for f in v), "column names"),
                "dense_features": (
                    lambda v: all(isinstance(f, str) and f for f in v),
                    "column names or globs",
                ),
                "dense_hidden_units": (lambda v: all(positive_int(u) for u in v), "positive integers"),
                "history_length": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
                "id_dropout": (lambda v: non_negative(v) and v < 1, "a number in [0, 1)"),
                "confidence": one_of(*CONFIDENCES),
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
    description="Two-tower retrieval: id + side-feature (+ dense feature, history) towers, in-batch softmax "
    "with log-Q, hard/extra negatives, play-count confidence",
    paper="Yi et al., Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations, RecSys 2019; "
    "Covington et al., Deep Neural Networks for YouTube Recommendations, RecSys 2016 (history pooling)",
)
class TwoTower(FeatureCandidates, HistoryQueries, RetrievalModel):
    """``score(user, item) = <query_tower(user), candidate_tower(item)>``.

    Each tower embeds the raw id, adds the embeddings of the id's side features (user
    age, gender, occupation, first-seen time; item genres, first-seen time) and passes
    the sum through optional dense layers. Trained with TFRS's ``Retrieval`` task (in-batch
    softmax, temperature, log-Q correction, accidental hits removed, optional hard
    negatives and extra uniform negatives). ``similar_items`` ranks items by cosine
    similarity of their candidate-tower outputs.

    With ``dense_features`` the candidate tower adds each item's numeric vector (audio
    descriptors, a precomputed embedding), normalized inside the model
    (:class:`CatalogueFeatures`), and can embed an item from its vector alone: cold
    items of the side table are looked up like known ones, and the export gains
    ``item_embedding_from_features``. With ``history_length`` the query tower adds the
    pooled candidate embeddings of the user's training items (:class:`HistoryPool`; in
    training each positive is left out of its own user's history) and the export gains
    ``recommend_from_history`` for users given by what they listened to.

    Example:
        >>> model = tfrec.models.build("two_tower", split.train, hidden_units=(64,))
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
        >>> model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=10)
        >>> model.similar_items(["1"], k=5)
    """

    def __init__(self, config: TwoTowerConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c, d = self.config, self.data
        tower = {"embedding_dim": c.embedding_dim, "hidden_units": c.hidden_units, "dropout": c.dropout}
        with_history = d.history_items is not None
        # === Layers ===
        self.query_tower = IdTower(
            d.users, features=d.user_features, id_dropout=c.id_dropout if with_history else 0.0,
            name="query_tower", **tower,
        )  # fmt: skip
        self.candidate_tower = IdTower(
            d.items, features=d.item_features, id_dropout=c.id_dropout, name="candidate_tower", **tower
        )
        self.item_features = (
            None if d.item_dense is None
            else CatalogueFeatures(d.item_dense, d.items, c.embedding_dim, c.dense_hidden_units, name="item_features")
        )  # fmt: skip
        self.history_pool = None
        if with_history:
            self.history_pool = HistoryPool(
                d.history_items,
                d.history_weights,
                c.embedding_dim,
                self.candidate_tower.output_dim,
                name="history",
            )
        self.objective = retrieval_objective(
            c, d.item_counts, num_hard_negatives=c.num_hard_negatives, extra_negatives=c.extra_negatives,
            confidence=c.confidence,
        )  # fmt: skip

    @classmethod
    def stream_fields(cls, config: TwoTowerConfig) -> tuple[str, ...] | None:
        """Streams with id towers only (no side or dense features, no history); with a
        confidence the batches carry the interaction's weight."""
        if (
            config.dense_features
            or config.history_length
            or set(config.user_features + config.item_features) - {AUTO}
        ):
            return None
        return ("weight",) if config.confidence != "binary" else ()

    @classmethod
    def prepare(cls, train: Interactions, config: TwoTowerConfig) -> ModelData:
        """Vocabularies, counts, the side and dense features and the histories the config asks for."""
        return ModelData.of(
            train,
            model=cls.registry_name,
            user_features=config.user_features,
            item_features=config.item_features,
            dense_features=config.dense_features,
            history_length=config.history_length,
        )

    @classmethod
    def training_data(cls, train: Interactions, config: TwoTowerConfig, seed: int = 0) -> tf.data.Dataset:
        """Positive pairs reshuffled each epoch, with their weights when the confidence reads them."""
        weights = config.confidence != "binary" and train.has_weights
        return to_dataset(train, batch_size=config.batch_size, seed=seed, weights=weights)

    # === Towers ===
    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        if self.item_features is None:
            return self.candidate_tower.lookup(item_ids)
        return self.item_features.lookup(item_ids)  # training items, then cold items with features

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        if self.item_features is None:
            return self.candidate_tower.from_index(index, training=training)
        extra = self.item_features.from_index(index)
        return self.candidate_tower.from_index(self.item_features.trained_index(index), training, extra=extra)

    def catalogue_parts(self) -> list[tf.Tensor] | None:
        """The item embedding table, when the candidate tower is just that table."""
        table = None if self.item_features is not None else self.candidate_tower.table()
        return None if table is None else [table]

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self._query(index, None, training)

    def training_queries(
        self, user_index: tf.Tensor, item_index: tf.Tensor, training: bool = False
    ) -> tf.Tensor:
        return self._query(user_index, item_index, training)

    def _query(self, index: tf.Tensor, positives: tf.Tensor | None, training: bool) -> tf.Tensor:
        """The query tower (plus the pooled history, each row's positive left out of it)."""
        extra = None
        if self.history_pool is not None:
            items, weights = self.history_pool.of_users(index)
            if positives is not None:
                weights = weights * tf.cast(items != positives[:, None], tf.float32)
            extra = self.history_pool.pool(
                items, weights, lambda i: self.candidate_from_index(i, training=training)
            )
        return self.query_tower.from_index(index, training, extra=extra)

    # === Capabilities (active with dense features / a history) ===
    def feature_names(self) -> list[str]:
        return [] if self.item_features is None else list(self.item_features.table.names)

    def candidate_from_features(self, values: tf.Tensor) -> tf.Tensor:
        unknown = tf.zeros(tf.shape(values)[:1], tf.int64)
        return self.candidate_tower.from_index(unknown, extra=self.item_features.from_values(values))

    def example_features(self, count: int) -> np.ndarray:
        return self.item_features.example_values(count)

    def has_history(self) -> bool:
        return self.history_pool is not None

    def query_from_history(self, item_index: tf.Tensor, plays: tf.Tensor) -> tf.Tensor:
        pooled = self.history_pool.pool(item_index, history_weights(plays), self.candidate_from_index)
        return self.query_tower.from_index(tf.zeros(tf.shape(item_index)[:1], tf.int64), extra=pooled)

    def export_config(self) -> dict:
        extra = {"dense_features": self.feature_names()} if self.item_features is not None else {}
        return {**super().export_config(), **extra}
