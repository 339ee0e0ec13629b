"""Neural collaborative filtering (He et al., WWW 2017): the scorer shared by GMF, MLP and NeuMF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow_recommenders as tfrs

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import SAMPLERS, with_negatives
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.base import Ids, TowerPairMixin, replica_mean
from tfrec.models.registry import TRAINING_RULES, check, non_negative, one_of, positive_int
from tfrec.models.towers import IdTower


@dataclass(frozen=True)
class NeuralCFConfig:
    """The training recipe shared by ``gmf``, ``mlp`` and ``neumf`` (their configs extend it).

    Attributes:
        l2: L2 weight on the batch's embeddings.
        num_negatives: Sampled negatives per positive (4 in the paper).
        sampler: ``uniform`` or ``popularity`` negatives.
        learning_rate: Adam learning rate.
        epochs: Training epochs.
        batch_size: Positives per batch (each brings ``num_negatives`` negatives).
    """

    l2: float = 0.0
    num_negatives: int = 4
    sampler: str = "uniform"
    learning_rate: float = 1e-3
    epochs: int = 20
    batch_size: int = 256

    def __post_init__(self) -> None:
        check(self, self.rules())

    def rules(self) -> dict:
        rules = {
            "l2": (non_negative, "a number >= 0"),
            "num_negatives": (positive_int, "a positive integer"),
            "sampler": one_of(*SAMPLERS),
            **TRAINING_RULES,
        }
        if hasattr(self, "factors"):
            rules["factors"] = (positive_int, "a positive integer")
        if hasattr(self, "mlp_layers"):
            rules["mlp_layers"] = (
                lambda v: len(v) > 0 and all(positive_int(u) for u in v) and v[0] % 2 == 0,
                "positive integers, the first even",
            )
        return rules


class NeuralCF(TowerPairMixin, tfrs.Model):
    """A pointwise (user, item) scorer trained with binary cross-entropy on sampled negatives.

    The query representation of a user is the concatenation of its GMF and MLP
    embeddings (whichever the variant has), likewise for items; :meth:`interact` turns
    aligned (user, item) representations into logits. Scores are probabilities
    (sigmoid of the logit) everywhere: ``score``, ``recommend``, evaluation and export.

    Subclasses set ``variant`` (``gmf``, ``mlp`` or ``neumf``).

    Args:
        user_vocabulary: Known user ids.
        item_vocabulary: Known item ids.
        factors: GMF latent factors.
        mlp_layers: MLP widths (embeddings are ``mlp_layers[0] // 2`` wide each).
        l2: L2 weight on the batch's embeddings.
    """

    task = "ranking"
    variant = "neumf"

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        item_vocabulary: Sequence[str],
        factors: int = 32,
        mlp_layers: Sequence[int] = (64, 32, 16),
        l2: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.item_vocabulary = Ids(item_vocabulary)
        self.factors = int(factors)
        self.mlp_layers = [int(u) for u in mlp_layers]
        self.l2 = float(l2)
        uses_gmf = self.variant in ("gmf", "neumf")
        uses_mlp = self.variant in ("mlp", "neumf")
        self.gmf_dim = self.factors if uses_gmf else 0
        self.mlp_dim = self.mlp_layers[0] // 2 if uses_mlp else 0

        # === Layers ===
        width = self.gmf_dim + self.mlp_dim
        self.query_tower = IdTower(self.user_vocabulary, width, init_stddev=0.01, name="query_tower")
        self.candidate_tower = IdTower(self.item_vocabulary, width, init_stddev=0.01, name="candidate_tower")
        self.mlp = []
        previous = 2 * self.mlp_dim
        for position, units in enumerate(self.mlp_layers[1:] if uses_mlp else []):
            layer = keras.layers.Dense(units, activation="relu", name=f"mlp_{position}")
            layer.build((None, previous))
            self.mlp.append(layer)
            previous = units
        mlp_out = (self.mlp_layers[-1] if len(self.mlp_layers) > 1 else 2 * self.mlp_dim) if uses_mlp else 0
        self.output_layer = keras.layers.Dense(1, name="prediction")
        self.output_layer.build((None, self.gmf_dim + mlp_out))
        self.ranking = tfrs.tasks.Ranking(
            loss=keras.losses.BinaryCrossentropy(from_logits=True, reduction=keras.losses.Reduction.NONE)
        )

    # === Scoring ===
    def interact(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Logits of aligned (user, item) representations: ``[N, d]`` x ``[N, d]`` -> ``[N]``."""
        parts = []
        if self.gmf_dim:
            parts.append(queries[:, : self.gmf_dim] * candidates[:, : self.gmf_dim])
        if self.mlp_dim:
            x = tf.concat([queries[:, self.gmf_dim :], candidates[:, self.gmf_dim :]], axis=1)
            for layer in self.mlp:
                x = layer(x)
            parts.append(x)
        return self.output_layer(tf.concat(parts, axis=1))[:, 0]

    def score_all(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Every user against every item, ``[U, I]`` probabilities, one user at a time."""
        num_items = tf.shape(candidates)[0]

        def one_user(query: tf.Tensor) -> tf.Tensor:
            tiled = tf.repeat(query[None, :], num_items, axis=0)
            return tf.sigmoid(self.interact(tiled, candidates))

        return tf.map_fn(
            one_user, queries, fn_output_signature=tf.TensorSpec([None], tf.float32), parallel_iterations=4
        )

    def score_cases(self, queries: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Each user against its own items: ``[n, d]`` x ``[n, w, d]`` -> ``[n, w]``."""
        shape = tf.shape(candidates)
        tiled = tf.repeat(queries, shape[1], axis=0)
        flat = tf.reshape(candidates, [-1, shape[2]])
        return tf.reshape(tf.sigmoid(self.interact(tiled, flat)), shape[:2])

    # === Forward ===
    def _logits(self, features, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        queries = self.query_tower(features["user_id"], training=training)
        candidates = self.candidate_tower(features["item_id"], training=training)
        penalty = self.l2 * replica_mean(
            tf.reduce_sum(tf.square(queries), 1) + tf.reduce_sum(tf.square(candidates), 1)
        )
        return self.interact(queries, candidates), penalty

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        logits, _ = self._logits(inputs, training)
        return tf.sigmoid(logits)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        logits, penalty = self._logits(features, training)
        # Per-example losses averaged over the global batch (tf.distribute-safe).
        per_example = self.ranking(labels=labels[:, None], predictions=logits[:, None])
        return replica_mean(per_example) + penalty

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: NeuralCFConfig) -> NeuralCF:
        """Builds the model for a training split (vocabularies from it)."""
        vocabulary = Vocabulary.from_interactions(train)
        shape = {k: getattr(config, k) for k in ("factors", "mlp_layers") if hasattr(config, k)}
        return cls(vocabulary.users, vocabulary.items, l2=config.l2, **shape)

    @staticmethod
    def training_data(train: Interactions, config: NeuralCFConfig, seed: int = 0) -> tf.data.Dataset:
        """Each positive with ``num_negatives`` fresh negatives per epoch, labels 1/0."""
        return with_negatives(
            train,
            Vocabulary.from_interactions(train),
            num_negatives=config.num_negatives,
            sampler=config.sampler,
            batch_size=config.batch_size,
            seed=seed,
        )

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            "item_vocabulary": list(self.item_vocabulary),
            "factors": self.factors,
            "mlp_layers": self.mlp_layers,
            "l2": self.l2,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> NeuralCF:
        return cls(**config)
