"""Neural collaborative filtering (He et al., WWW 2017): the scorer shared by GMF, MLP and NeuMF."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import SAMPLERS, with_negatives
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.heads import PointwiseObjective
from tfrec.models.recommender import Recommender
from tfrec.models.registry import TRAINING_RULES, check, non_negative, one_of, positive_int
from tfrec.models.towers import IdTower

# Rules of the branch-shape fields the variants' configs add.
FACTORS_RULE = (positive_int, "a positive integer")
MLP_LAYERS_RULE = (
    lambda v: len(v) > 0 and all(positive_int(u) for u in v) and v[0] % 2 == 0,
    "positive integers, the first even",
)


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
        """Validation rules of the fields (a variant's config adds its own)."""
        return {
            "l2": (non_negative, "a number >= 0"),
            "num_negatives": (positive_int, "a positive integer"),
            "sampler": one_of(*SAMPLERS),
            **TRAINING_RULES,
        }


class NeuralCF(Recommender):
    """A pointwise (user, item) scorer trained with binary cross-entropy on sampled negatives.

    The query representation of a user is the concatenation of its GMF and MLP
    embeddings (whichever branches the variant has: :meth:`branches`), likewise for
    items; :meth:`interact` turns aligned (user, item) representations into logits.
    Scores are probabilities (sigmoid of the logit) everywhere: ``score``,
    ``recommend``, evaluation and export.
    """

    def __init__(self, config=None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        factors, mlp_layers = self.branches(self.config)
        self.gmf_dim = int(factors)
        self.mlp_layers = [int(u) for u in mlp_layers]
        self.mlp_dim = self.mlp_layers[0] // 2 if self.mlp_layers else 0
        width = self.gmf_dim + self.mlp_dim
        self.query_tower = IdTower(self.data.users, width, init_stddev=0.01, name="query_tower")
        self.candidate_tower = IdTower(self.data.items, width, init_stddev=0.01, name="candidate_tower")
        self.mlp = []
        previous = 2 * self.mlp_dim
        for position, units in enumerate(self.mlp_layers[1:]):
            layer = keras.layers.Dense(units, activation="relu", name=f"mlp_{position}")
            layer.build((None, previous))
            self.mlp.append(layer)
            previous = units
        mlp_out = (self.mlp_layers[-1] if len(self.mlp_layers) > 1 else 2 * self.mlp_dim) if self.mlp_layers else 0
        self.output_layer = keras.layers.Dense(1, name="prediction")
        self.output_layer.build((None, self.gmf_dim + mlp_out))
        self.objective = PointwiseObjective(self.config.l2, name="objective")

    @classmethod
    def branches(cls, config) -> tuple[int, tuple[int, ...]]:  # pragma: no cover - abstract
        """``(GMF factors, MLP layer widths)`` of a variant's config (0 / () for no branch)."""
        raise NotImplementedError

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

    def catalogue_parts(self) -> list[tf.Tensor]:
        """The item embedding table (GMF and MLP columns side by side)."""
        return [self.candidate_tower.table()]

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
    def _embed(self, features, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        return (
            self.query_tower(features["user_id"], training=training),
            self.candidate_tower(features["item_id"], training=training),
        )

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return tf.sigmoid(self.interact(*self._embed(inputs, training)))

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs
        queries, candidates = self._embed(features, training)
        return self.objective.loss(labels, self.interact(queries, candidates), queries, candidates)

    # === Training data ===
    @classmethod
    def training_data(cls, train: Interactions, config: NeuralCFConfig, seed: int = 0) -> tf.data.Dataset:
        """Each positive with ``num_negatives`` fresh negatives per epoch, labels 1/0."""
        return with_negatives(
            train,
            Vocabulary.from_interactions(train),
            num_negatives=config.num_negatives,
            sampler=config.sampler,
            batch_size=config.batch_size,
            seed=seed,
        )
