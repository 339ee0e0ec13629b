"""Two-tower retrieval: query and candidate towers over ids and side features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.interactions import ITEM, TIMESTAMP, USER, Interactions
from tfrec.data.pipeline import to_dataset
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError
from tfrec.models.base import Ids
from tfrec.models.registry import TRAINING_RULES, check, non_negative, positive, positive_int, register
from tfrec.models.retrieval import OBJECTIVE_RULES, RetrievalObjective
from tfrec.models.towers import IdTower

AUTO = "auto"
# Side features used by default when the data has them.
AUTO_USER_FEATURES = ("age", "gender", "occupation")
AUTO_ITEM_FEATURES = ("genres",)
# Derived from the training interactions: the bucket of an id's first timestamp.
FIRST_SEEN = "first_seen"
NUMERIC_BUCKETS = 10


@dataclass(frozen=True)
class TwoTowerConfig:
    """Hyperparameters of :class:`TwoTower` and its default training recipe.

    The defaults were chosen on ML-100K (leave-last-out full ranking and TFRS's 80/20
    top-100 setting), with the automatic side features on, mean over seeds 0, 1, 2. One
    cell: ``tfrec train two_tower --dataset movielens-100k --split leave-last-out --seed S
    --set batch_size=B --set extra_negatives=N --k 10`` (the seed also seeds the split;
    top-100 from bench/peers.py ``top_k_accuracy`` on ``--split random:0.2``):

    ====================================  ======  =======  ========
    batch_size / extra_negatives          R@10    NDCG@10  top-100
    ====================================  ======  =======  ========
    256 / 1,024 (the earlier default)     0.1315  0.0675   0.3652
    1,024 / 0 (default)                   0.1287  0.0680   0.3816
    1,024 / 256                           0.1312  0.0687   0.3813
    ====================================  ======  =======  ========

    Recall@10 differs by less than its seed-to-seed spread (0.124-0.140) and top-100 is
    better; training speed is measured by bench/train_speed.py.
    Try the others with ``tfrec train two_tower --dataset movielens-100k
    --set extra_negatives=1024 --set batch_size=256``.

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


def side_features(
    data: Interactions, ids: Sequence[str], requested: Sequence[str], side: str
) -> dict[str, list[list[str]]]:
    """Tokens of each requested side feature for each id (aligned with ``ids``).

    Args:
        data: The training split (its user/item table and timestamps).
        ids: The vocabulary to align with.
        requested: Column names, ``auto`` or ``first_seen``.
        side: ``user`` or ``item``.

    Returns:
        ``{feature: [[token, ...] per id]}``.

    Raises:
        DataError: an explicitly requested column the data does not have.
    """
    table = data.users if side == "user" else data.items
    key = USER if side == "user" else ITEM
    defaults = AUTO_USER_FEATURES if side == "user" else AUTO_ITEM_FEATURES
    names: list[str] = []
    for name in requested:
        if name == AUTO:
            names += [c for c in defaults if table is not None and c in table.columns]
            if TIMESTAMP in data.frame.columns:
                names.append(FIRST_SEEN)
        elif name == FIRST_SEEN:
            if TIMESTAMP not in data.frame.columns:
                raise DataError(f"{side} feature 'first_seen' needs timestamps; {data.name} has none")
            names.append(name)
        elif table is None or name not in table.columns:
            have = [] if table is None else list(table.columns)
            raise DataError(f"{data.name}: no {side} column {name!r} for a side feature; it has {have}")
        else:
            names.append(name)
    out = {}
    index = pd.Index(list(ids))
    for name in dict.fromkeys(names):
        if name == FIRST_SEEN:
            column = data.frame.groupby(key)[TIMESTAMP].min().reindex(index)
        else:
            column = table[name].reindex(index)
        out[name] = _tokens(column)
    return out


def _tokens(column: pd.Series) -> list[list[str]]:
    """Numeric: decile bucket; text: ``|``-separated values; missing: no token."""
    if column.dtype.kind in "iuf":
        values = column.to_numpy(dtype=np.float64)
        present = ~np.isnan(values)
        edges = (
            np.unique(np.quantile(values[present], np.linspace(0, 1, NUMERIC_BUCKETS + 1)[1:-1]))
            if present.any()
            else []
        )
        buckets = np.searchsorted(edges, values, side="right")
        return [[f"b{b}"] if ok else [] for b, ok in zip(buckets, present)]
    return [[t for t in str(v).split("|") if t] if isinstance(v, str) else [] for v in column]


@register(
    "two_tower",
    config=TwoTowerConfig,
    task="retrieval",
    description="Two-tower retrieval: id + side-feature towers, in-batch softmax with log-Q, hard/extra negatives",
    paper="Yi et al., Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations, RecSys 2019",
)
@keras.utils.register_keras_serializable(package="tfrec")
class TwoTower(RetrievalObjective):
    """``score(user, item) = <query_tower(user), candidate_tower(item)>``.

    Each tower embeds the raw id, adds the embeddings of the id's side features (user
    age, gender, occupation, first-seen time; item genres, first-seen time) and passes
    the sum through optional dense layers. Trained with TFRS's ``Retrieval`` task (in-batch
    softmax, temperature, log-Q correction, accidental hits removed, optional hard
    negatives and extra uniform negatives). ``similar_items`` ranks items by cosine
    similarity of their candidate-tower outputs.

    Args:
        user_vocabulary: Known user ids.
        item_vocabulary: Known item ids (the catalogue).
        item_counts: Training interactions per item (for the log-Q correction).
        user_features: ``{name: tokens per user}`` aligned with ``user_vocabulary``.
        item_features: ``{name: tokens per item}`` aligned with ``item_vocabulary``.
        embedding_dim, hidden_units, dropout, l2, loss, temperature,
        logq_correction, num_hard_negatives, extra_negatives: As in :class:`TwoTowerConfig`.

    Example:
        >>> model = tfrec.models.build("two_tower", split.train, hidden_units=(64,))
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
        >>> model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=10)
        >>> model.similar_items(["1"], k=5)
    """

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        item_vocabulary: Sequence[str],
        item_counts: Sequence[int],
        user_features: Mapping[str, Sequence[Sequence[str]]] | None = None,
        item_features: Mapping[str, Sequence[Sequence[str]]] | None = None,
        embedding_dim: int = 32,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        l2: float = 0.0,
        loss: str = "softmax",
        temperature: float = 1.0,
        logq_correction: bool = True,
        num_hard_negatives: int = 0,
        extra_negatives: int = 1024,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.item_vocabulary = Ids(item_vocabulary)
        self.item_counts = Ids(int(c) for c in item_counts)
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = [int(u) for u in hidden_units]
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.loss_name = loss
        self.temperature = float(temperature)
        self.logq_correction = bool(logq_correction)
        self.num_hard_negatives = int(num_hard_negatives)
        self.extra_negatives = int(extra_negatives)
        tower = dict(embedding_dim=self.embedding_dim, hidden_units=self.hidden_units, dropout=self.dropout)
        # === Layers ===
        self.query_tower = IdTower(self.user_vocabulary, features=user_features, name="query_tower", **tower)
        self.candidate_tower = IdTower(
            self.item_vocabulary, features=item_features, name="candidate_tower", **tower
        )
        self._setup_objective(
            self.item_counts, loss, self.temperature, self.logq_correction, self.l2,
            self.num_hard_negatives, self.extra_negatives,
        )  # fmt: skip

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: TwoTowerConfig) -> TwoTower:
        """Builds the model for a training split (vocabularies, counts, side features from it)."""
        vocabulary = Vocabulary.from_interactions(train)
        return cls(
            vocabulary.users, vocabulary.items, vocabulary.item_counts,
            user_features=side_features(train, vocabulary.users, config.user_features, "user"),
            item_features=side_features(train, vocabulary.items, config.item_features, "item"),
            embedding_dim=config.embedding_dim, hidden_units=config.hidden_units,
            dropout=config.dropout, l2=config.l2, loss=config.loss,
            temperature=config.temperature, logq_correction=config.logq_correction,
            num_hard_negatives=config.num_hard_negatives, extra_negatives=config.extra_negatives,
        )  # fmt: skip

    @staticmethod
    def training_data(train: Interactions, config: TwoTowerConfig, seed: int = 0) -> tf.data.Dataset:
        """Batches of positive (user, item) pairs, reshuffled each epoch."""
        return to_dataset(train, batch_size=config.batch_size, seed=seed)

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            "item_vocabulary": list(self.item_vocabulary),
            "item_counts": list(self.item_counts),
            "user_features": self.query_tower.plain_features(),
            "item_features": self.candidate_tower.plain_features(),
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
            "l2": self.l2,
            "loss": self.loss_name,
            "temperature": self.temperature,
            "logq_correction": self.logq_correction,
            "num_hard_negatives": self.num_hard_negatives,
            "extra_negatives": self.extra_negatives,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> TwoTower:
        return cls(**config)
