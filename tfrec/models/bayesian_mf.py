"""Bayesian matrix factorization for explicit ratings, sampled by Gibbs sweeps in ``model.fit``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfrec._keras import keras, tf
from tfrec.data.interactions import Interactions
from tfrec.data.pipeline import to_dataset
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError, TfrecError
from tfrec.models.base import FactorizedMixin, Ids, id_lookup, known
from tfrec.models.registry import boolean, check, non_negative, positive, positive_int, register


@dataclass(frozen=True)
class BayesianMFConfig:
    """Hyperparameters of :class:`BayesianMF` and its training recipe.

    There is no learning rate and no L2 weight to tune: the factors' priors (a mean and a
    precision matrix per side) and the noise precision are sampled from the data.

    Attributes:
        embedding_dim: Latent factors per user and item.
        epochs: Passes over the training ratings. Epochs alternate between sampling the
            users' factors and the items' factors, so a Gibbs sweep is two epochs.
        burn_in: Epochs sampled before the samples' predictions start being averaged.
        average_rank: Rank of the running average of the sampled rating matrices
            (the towers' width, minus one); at least ``embedding_dim``.
        noise_precision: Precision (1 / variance) of the rating noise; 0 samples it
            every sweep from its posterior (Gamma(1, 1) prior).
        implicit_feedback: Centre each user's factor prior on what the user rated
            (``sum of beta_j / sqrt(count)`` over the user's training items) and each
            item's on who rated it, the links ``beta`` sampled too (Macau-style side
            information from the rating pattern: a Bayesian SVD++ on both sides).
        link_precision: Prior precision of the links (times the side's factor precision).
        batch_size: Ratings per batch while gathering an epoch's statistics (memory only:
            a sample does not depend on it beyond float rounding).

    Measured on ML-100K's folds u1..u5 (test RMSE, seed 0; the defaults row is
    ``bench/mf_quality.py``, the other ``bench/mf_variants.py bayesian_mf --set ...``):

    ===============================================  ======  ==========================================
    setting                                          mean    u1, u2, u3, u4, u5
    ===============================================  ======  ==========================================
    **defaults** (implicit feedback, link 10)        0.8882  0.8954, 0.8874, 0.8831, 0.8871, 0.8876
    ``implicit_feedback=false`` (plain BPMF)         0.8976  0.9062, 0.8995, 0.8925, 0.8941, 0.8957
    ===============================================  ======  ==========================================

    The towers average the sampled predictions, not the sampled factors: the chain drifts
    along the factors' rotations (which leave every prediction unchanged), so a mean of
    factors blurs as the chain grows longer.
    """

    embedding_dim: int = 30
    epochs: int = 400
    burn_in: int = 40
    average_rank: int = 128
    noise_precision: float = 0.0
    implicit_feedback: bool = True
    link_precision: float = 10.0
    batch_size: int = 16384

    def __post_init__(self) -> None:
        check(
            self,
            {
                "embedding_dim": (positive_int, "a positive integer"),
                "epochs": (positive_int, "a positive integer"),
                "burn_in": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
                "average_rank": (positive_int, "a positive integer"),
                "noise_precision": (non_negative, "a number >= 0 (0: sampled)"),
                "implicit_feedback": (boolean, "true or false"),
                "link_precision": (positive, "a number > 0"),
                "batch_size": (positive_int, "a positive integer"),
            },
        )


# Ratings of one row per batched matmul when summing outer products (see _add_statistics).
CHUNK = 32


def _sampled_sum(shape: Sequence[int]) -> tf.Variable:
    """A float32 accumulator each replica adds to on its own; reading it sums the replicas."""
    return tf.Variable(
        tf.zeros(shape),
        trainable=False,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.SUM,
    )


@register(
    "bayesian_mf",
    config=BayesianMFConfig,
    task="rating",
    description="Bayesian matrix factorization: Gibbs-sampled factors, priors and implicit-feedback links",
    paper=(
        "Salakhutdinov & Mnih, Bayesian Probabilistic Matrix Factorization using MCMC, ICML 2008; "
        "Simm et al., Macau: Scalable Bayesian Factorization with High-Dimensional Side Information, 2017"
    ),
)
@keras.utils.register_keras_serializable(package="tfrec")
class BayesianMF(FactorizedMixin, keras.Model):
    """Rating = global mean + <user factors, item factors>, averaged over Gibbs samples.

    Each user's and item's factors have a Gaussian prior whose mean and precision matrix
    are themselves sampled (Normal-Wishart hyperprior), and ratings have Gaussian noise of
    precision ``noise_precision`` (sampled when 0). With implicit feedback (a stored
    rating pattern, ``num_ratings > 0``) a user's prior mean also moves by
    ``sum_j beta_j / sqrt(count)`` over the items the user rated (and an item's by the
    users who rated it), the links ``beta`` drawn from their matrix-normal conditional
    after each side (:func:`link_draw`): which items a user chose to rate informs their
    factors, as in SVD++, with nothing to tune by hand.

    ``model.fit`` runs the Gibbs sampler: every epoch streams the ratings once, adding each rating's statistics
    (``x x^T`` and ``x * (rating - mean)``, ``x`` the other side's factors) into
    per-row sums, and at the end of the epoch one side's prior and factors are drawn from
    their exact conditionals (epochs alternate users and items). After ``burn_in``
    epochs every sweep's rating matrix ``P Q^T`` enters a running average held at rank
    ``average_rank`` as ``X Y^T`` (:func:`running_average_update`); the towers are
    ``query = [x_u, 1]``, ``candidate = [y_i, mean]``, so the model serves like any
    factorization and predicts the posterior mean of the rating. Unknown ids get zero
    factors, so their prediction is the global mean.

    ``fit`` adds the callback that draws the samples (:class:`GibbsSweep`); there are no
    gradients, so the optimizer given to ``compile`` (if any) is never applied.

    Args:
        user_vocabulary: Known user ids.
        item_vocabulary: Known item ids.
        embedding_dim: Latent factors per user and item.
        burn_in: Epochs before the samples are averaged.
        noise_precision: Rating noise precision, or 0 to sample it.
        average_rank: Rank of the running average of the sampled rating matrices.
        link_precision: Prior precision of the links (times the side's factor precision).
        num_ratings: Training ratings in the stored rating pattern; > 0 turns implicit
            feedback on, and :meth:`set_pattern` must fill it before ``fit``
            (``from_data`` does).
        global_mean: The training ratings' mean.
        rating_range: ``(low, high)`` to clip predictions to at inference, or None.
        init_stddev: Standard deviation of the factors' first state.
        seed: Seed of the sampler (draws are stateless: seed, epoch and draw number).

    Example:
        >>> model = tfrec.models.BayesianMF(vocab.users, vocab.items, global_mean=3.5)
        >>> model.compile()
        >>> model.fit(tfrec.data.to_dataset(split.train, label="rating", batch_size=4096), epochs=400)
    """

    task = "rating"

    def __init__(
        self,
        user_vocabulary: Sequence[str],
        item_vocabulary: Sequence[str],
        embedding_dim: int = 30,
        burn_in: int = 40,
        average_rank: int = 128,
        noise_precision: float = 0.0,
        link_precision: float = 10.0,
        num_ratings: int = 0,
        global_mean: float = 0.0,
        rating_range: Sequence[float] | None = None,
        init_stddev: float = 0.1,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # === Config ===
        self.user_vocabulary = Ids(user_vocabulary)
        self.item_vocabulary = Ids(item_vocabulary)
        self.embedding_dim = int(embedding_dim)
        self.burn_in = int(burn_in)
        self.average_rank = int(average_rank)
        if self.average_rank < self.embedding_dim:
            raise TfrecError(
                f"average_rank ({average_rank}) must be at least embedding_dim ({embedding_dim})"
            )
        self.noise_precision = float(noise_precision)
        self.link_precision = float(link_precision)
        self.num_ratings = int(num_ratings)
        self.global_mean = float(global_mean)
        self.rating_range = None if rating_range is None else [float(r) for r in rating_range]
        self.init_stddev = float(init_stddev)
        self.seed = int(seed)

        # === State: the current sample, the running mean, the epoch's statistics ===
        self.user_lookup = id_lookup(self.user_vocabulary, "user_lookup")
        self.item_lookup = id_lookup(self.item_vocabulary, "item_lookup")
        self.n_users, self.n_items = len(self.user_vocabulary), len(self.item_vocabulary)
        k = self.embedding_dim
        self.user_factors = self._state("user_factors", [self.n_users + 1, k], self._first_state(1))
        self.item_factors = self._state("item_factors", [self.n_items + 1, k], self._first_state(2))
        self.user_average = self._state("user_average", [self.n_users + 1, self.average_rank], "zeros")
        self.item_average = self._state("item_average", [self.n_items + 1, self.average_rank], "zeros")
        self.mu = self._state("global_mean", [], keras.initializers.Constant(self.global_mean))
        self.noise = self._state(
            "noise_precision", [], keras.initializers.Constant(self.noise_precision or 1.0)
        )
        self.epochs_sampled = self._state("epochs_sampled", [], "zeros", tf.int64)
        self.samples_averaged = self._state("samples_averaged", [], "zeros")
        # The training pattern (user row, item row) the links regress on, and the links.
        self.pattern = self._state("rating_pattern", [self.num_ratings, 2], "zeros", tf.int64)
        self.user_link = self._state("user_link", [self.n_items, k], "zeros")  # per rated item
        self.item_link = self._state("item_link", [self.n_users, k], "zeros")  # per rating user
        rows = max(self.n_users, self.n_items) + 1
        self.gram = _sampled_sum([rows, k, k])
        self.rhs = _sampled_sum([rows, k])
        self.squared_error = _sampled_sum([2])  # [sum of squared errors, ratings seen]
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.rmse_tracker = keras.metrics.RootMeanSquaredError(name="rmse")

    def _state(self, name: str, shape: Sequence[int], initializer, dtype=tf.float32) -> tf.Variable:
        return self.add_weight(name=name, shape=shape, initializer=initializer, dtype=dtype, trainable=False)

    def _first_state(self, draw: int) -> keras.initializers.Initializer:
        """Normal factors with row 0 (unknown ids) at zero."""
        stddev, seed = self.init_stddev, self.seed

        def initializer(shape, dtype=None, **_):
            values = tf.random.stateless_normal(shape, [seed, -draw], stddev=stddev)
            return tf.concat([tf.zeros([1, shape[1]]), values[1:]], axis=0)

        return initializer

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.rmse_tracker]

    # === Towers ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.user_lookup(user_ids)

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_lookup(item_ids)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[p_u, 1]`` per user (posterior-mean factors)."""
        factors = tf.gather(self.user_average, index) * known(index)[:, None]
        return tf.concat([factors, tf.ones_like(factors[:, :1])], axis=1)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[q_i, global mean]`` per item."""
        factors = tf.gather(self.item_average, index) * known(index)[:, None]
        return tf.concat([factors, tf.fill(tf.shape(factors[:, :1]), self.mu)], axis=1)

    # === Forward ===
    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query = self.query_from_index(self.user_lookup(inputs["user_id"]))
        candidate = self.candidate_from_index(self.item_lookup(inputs["item_id"]))
        rating = tf.reduce_sum(query * candidate, axis=1)
        if self.rating_range is not None and not training:
            rating = tf.clip_by_value(rating, *self.rating_range)
        return rating

    def compile(self, optimizer="sgd", **kwargs) -> None:
        """Keras ``compile``; the optimizer is never applied (the factors are sampled)."""
        super().compile(optimizer=optimizer, **kwargs)

    def fit(self, *args, callbacks=None, **kwargs):
        """Keras ``fit`` with :class:`GibbsSweep` first among the callbacks (it draws the samples)."""
        callbacks = list(callbacks or [])
        if not any(isinstance(c, GibbsSweep) for c in callbacks):
            callbacks.insert(0, GibbsSweep())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def train_step(self, data) -> dict[str, tf.Tensor]:
        """Adds a batch's statistics for the side this epoch samples; no gradients."""
        features, labels = data
        labels = tf.cast(tf.reshape(labels, [-1]), tf.float32)
        users, items = self.user_lookup(features["user_id"]), self.item_lookup(features["item_id"])
        p, q = tf.gather(self.user_factors, users), tf.gather(self.item_factors, items)
        rating = self.mu + tf.reduce_sum(p * q, axis=1)
        sampling_users = tf.equal(self.epochs_sampled % 2, 0)
        x = tf.where(sampling_users, q, p)  # the other side's factors: the regressors
        rows = tf.where(sampling_users, users, items)
        self._add_statistics(rows, x, labels - self.mu)
        error = tf.square(labels - rating)
        self.squared_error.assign_add(tf.stack([tf.reduce_sum(error), tf.cast(tf.size(error), tf.float32)]))
        self.loss_tracker.update_state(error)
        self.rmse_tracker.update_state(labels, rating)
        return {m.name: m.result() for m in self.metrics}

    def _add_statistics(self, rows: tf.Tensor, x: tf.Tensor, target: tf.Tensor) -> None:
        """Adds ``x x^T`` and ``x * target`` of each rating into its row's sums.

        The ratings are sorted by row and cut into chunks of at most ``CHUNK`` ratings of
        one row; a batched matmul of each zero-padded ``[CHUNK, k]`` chunk with itself
        gives the chunk's sum of outer products (cheaper than forming one ``k x k``
        product per rating), and the chunks are summed into their rows. Memory stays
        within ``(batch / CHUNK + distinct rows) * k * k`` floats whatever the skew, plus
        one dense update of the statistics table (``rows * k * k`` floats).
        """
        order = tf.argsort(rows, stable=True)
        rows, x, target = tf.gather(rows, order), tf.gather(x, order), tf.gather(target, order)
        row_ids, row_of = tf.unique(rows)  # sorted rows: row_of is non-decreasing
        n = tf.size(rows)
        first = tf.math.unsorted_segment_min(tf.range(n), row_of, tf.size(row_ids))
        position = tf.range(n) - tf.gather(first, row_of)
        starts = tf.cast(tf.equal(position % CHUNK, 0), tf.int32)
        chunk = tf.cumsum(starts) - 1
        chunks = tf.reduce_sum(starts)
        slots = tf.stack([chunk, position % CHUNK], axis=1)
        padded = tf.scatter_nd(slots, x, tf.stack([chunks, CHUNK, self.embedding_dim]))
        gram = tf.math.segment_sum(
            tf.einsum("cli,clj->cij", padded, padded),
            tf.math.segment_max(row_of, chunk),  # the row of each chunk
        )
        rhs = tf.math.segment_sum(x * target[:, None], row_of)
        # Dense adds: SyncOnRead variables (per-replica sums) have no scatter_add.
        table = self.gram.shape[0]
        self.gram.assign_add(
            tf.scatter_nd(row_ids[:, None], gram, [table, self.embedding_dim, self.embedding_dim])
        )
        self.rhs.assign_add(tf.scatter_nd(row_ids[:, None], rhs, [table, self.embedding_dim]))

    def test_step(self, data) -> dict[str, tf.Tensor]:
        """Squared error and RMSE of the posterior-mean prediction."""
        features, labels = data
        labels = tf.cast(tf.reshape(labels, [-1]), tf.float32)
        rating = self(features, training=False)
        self.loss_tracker.update_state(tf.square(labels - rating))
        self.rmse_tracker.update_state(labels, rating)
        return {m.name: m.result() for m in self.metrics}

    # === The Gibbs step closing an epoch ===
    def sample(self) -> None:
        """Draws the side whose statistics the epoch gathered (users on even epochs).

        Runs in the cross-replica context (reading the accumulators sums the replicas),
        then clears the statistics. Every draw is stateless (seed, epoch, draw number), so
        all replicas and workers draw the same sample.
        """
        epoch = int(self.epochs_sampled.numpy())
        users = epoch % 2 == 0
        own, count = (self.user_factors, self.n_users) if users else (self.item_factors, self.n_items)
        seeds = [tf.constant([self.seed, epoch * 4 + d], tf.int64) for d in range(4)]
        if users and self.noise_precision == 0.0:
            total, seen = tf.unstack(tf.cast(self.squared_error.read_value(), tf.float64))
            shape = 1.0 + seen / 2.0
            self.noise.assign(
                tf.cast(
                    tf.random.stateless_gamma([], seeds[0], shape, dtype=tf.float64) / (1.0 + total / 2.0),
                    tf.float32,
                )
            )
        if self.num_ratings and int(tf.reduce_min(self.pattern)) < 1:
            raise TfrecError("bayesian_mf: the rating pattern is not set; call set_pattern() before fit")
        factors = tf.cast(own[1:], tf.float64)
        offset = tf.zeros([], tf.float64)
        if self.num_ratings:  # implicit feedback: the prior mean moves by the rated rows' links
            pattern, link = self._pattern(users), (self.user_link if users else self.item_link)
            offset = tf.sparse.sparse_dense_matmul(pattern, tf.cast(link, tf.float64))
        prior_mean, prior_precision = normal_wishart_draw(factors - offset, seeds[1], seeds[2])
        drawn = conditional_draw(
            tf.cast(self.gram.read_value()[1 : count + 1], tf.float64),
            tf.cast(self.rhs.read_value()[1 : count + 1], tf.float64),
            prior_mean + offset,
            prior_precision,
            tf.cast(self.noise, tf.float64),
            seeds[3],
        )
        own.assign(tf.concat([tf.zeros([1, self.embedding_dim]), tf.cast(drawn, tf.float32)], axis=0))
        if self.num_ratings:
            link_seed = tf.constant([self.seed, -(epoch + 1) * 8], tf.int64)
            drawn_link = link_draw(
                pattern, drawn - prior_mean, prior_precision, self.link_precision, link_seed
            )
            link.assign(tf.cast(drawn_link, tf.float32))
        for accumulator in (self.gram, self.rhs, self.squared_error):
            accumulator.assign(tf.zeros_like(accumulator))
        self.epochs_sampled.assign_add(1)
        if epoch + 1 <= self.burn_in:  # burning in: the towers follow the chain
            padding = [[0, 0], [0, self.average_rank - self.embedding_dim]]
            (self.user_average if users else self.item_average).assign(tf.pad(own, padding))
        elif not users:  # a sweep is complete: its prediction enters the running average
            n = self.samples_averaged.assign_add(1.0)
            user_average, item_average = running_average_update(
                *(tf.cast(v[1:], tf.float64) for v in (self.user_average, self.item_average)),
                *(tf.cast(v[1:], tf.float64) for v in (self.user_factors, self.item_factors)),
                tf.cast(n, tf.float64),
            )
            for average, value in ((self.user_average, user_average), (self.item_average, item_average)):
                average.assign(
                    tf.concat([tf.zeros([1, self.average_rank]), tf.cast(value, tf.float32)], axis=0)
                )

    def _pattern(self, users: bool) -> tf.SparseTensor:
        """``[rows, columns]`` implicit features of one side, each row scaled to unit norm.

        Users' rows are the items they rated (``1 / sqrt(count)`` each); items' rows the
        users who rated them.
        """
        rows, columns = tf.unstack(self.pattern - 1, axis=1)  # table rows without the OOV row
        shape = [self.n_users, self.n_items]
        if not users:
            rows, columns, shape = columns, rows, shape[::-1]
        count = tf.math.bincount(rows, minlength=shape[0], dtype=tf.float64)
        values = tf.math.rsqrt(tf.gather(count, rows))
        return tf.sparse.reorder(tf.SparseTensor(tf.stack([rows, columns], axis=1), values, shape))

    # === Construction from data ===
    @classmethod
    def from_data(cls, train: Interactions, config: BayesianMFConfig) -> BayesianMF:
        """Builds the model for a training split: vocabularies, mean and rating range from it.

        The sampler's seed comes from NumPy's global generator (``keras.utils.set_random_seed``
        fixes it), so seeded runs draw the same chain.
        """
        if not train.has_ratings:
            raise DataError(f"bayesian_mf needs explicit ratings; {train.name} has none")
        vocabulary = Vocabulary.from_interactions(train)
        ratings = train.frame["rating"]
        model = cls(
            vocabulary.users,
            vocabulary.items,
            embedding_dim=config.embedding_dim,
            burn_in=config.burn_in,
            average_rank=config.average_rank,
            noise_precision=config.noise_precision,
            link_precision=config.link_precision,
            num_ratings=len(train) if config.implicit_feedback else 0,
            global_mean=float(ratings.mean()),
            rating_range=(float(ratings.min()), float(ratings.max())),
            seed=int(np.random.randint(0, 2**31 - 1)),
        )
        if config.implicit_feedback:
            model.set_pattern(train.frame["user_id"].astype(str), train.frame["item_id"].astype(str))
        return model

    def set_pattern(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> None:
        """Stores which user rated which item (the implicit feedback the links regress on)."""
        if len(user_ids) != self.num_ratings:
            raise TfrecError(
                f"set_pattern(): {len(user_ids)} ratings for a model built for {self.num_ratings}"
            )
        users = self.user_lookup(tf.constant(np.asarray(user_ids, dtype=str)))
        items = self.item_lookup(tf.constant(np.asarray(item_ids, dtype=str)))
        if not (bool(tf.reduce_all(users > 0)) and bool(tf.reduce_all(items > 0))):
            raise TfrecError("set_pattern(): every user and item must be in the model's vocabularies")
        self.pattern.assign(tf.stack([users, items], axis=1))

    @staticmethod
    def training_data(train: Interactions, config: BayesianMFConfig, seed: int = 0) -> tf.data.Dataset:
        """``(features, rating)`` batches of the training split."""
        return to_dataset(train, label="rating", batch_size=config.batch_size, seed=seed)

    # === Config ===
    def get_config(self) -> dict:
        return {
            "user_vocabulary": list(self.user_vocabulary),
            "item_vocabulary": list(self.item_vocabulary),
            "embedding_dim": self.embedding_dim,
            "burn_in": self.burn_in,
            "average_rank": self.average_rank,
            "noise_precision": self.noise_precision,
            "link_precision": self.link_precision,
            "num_ratings": self.num_ratings,
            "global_mean": self.global_mean,
            "rating_range": self.rating_range,
            "init_stddev": self.init_stddev,
            "seed": self.seed,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> BayesianMF:
        return cls(**config)


class GibbsSweep(keras.callbacks.Callback):
    """Closes every epoch of a :class:`BayesianMF` fit with its Gibbs step (``model.sample()``)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.sample()
        if logs is not None:
            logs["noise_precision"] = float(self.model.noise.numpy())


def wishart_draw(scale: tf.Tensor, dof: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One draw of a Wishart(``scale``, ``dof``) ``[k, k]`` matrix (Bartlett decomposition).

    ``A`` is lower triangular with ``A_ii = sqrt(chi2(dof - i))`` and standard normal
    entries below the diagonal; the draw is ``L A A^T L^T`` with ``L L^T = scale``.
    """
    k = scale.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    chi2 = 2.0 * tf.random.stateless_gamma(
        [k], seeds[0], (dof - tf.range(k, dtype=tf.float64)) / 2.0, dtype=tf.float64
    )
    below = tf.linalg.band_part(tf.random.stateless_normal([k, k], seeds[1], dtype=tf.float64), -1, 0)
    a = tf.linalg.set_diag(below, tf.sqrt(chi2))
    la = tf.linalg.cholesky(scale) @ a
    return la @ tf.transpose(la)


@tf.function
def normal_wishart_draw(
    factors: tf.Tensor, seed: tf.Tensor, mean_seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draws a side's prior ``(mean [k], precision [k, k])`` given its factors ``[n, k]``.

    The hyperprior is Normal-Wishart with mean 0, ``beta0 = 2``, ``W0 = I`` and
    ``nu0 = k`` degrees of freedom (Salakhutdinov & Mnih 2008).
    """
    n, k = tf.cast(tf.shape(factors)[0], tf.float64), factors.shape[1]
    beta0, nu0 = 2.0, float(k)
    average = tf.reduce_mean(factors, axis=0)
    centred = factors - average
    scatter = tf.transpose(centred) @ centred
    inverse_scale = (
        tf.eye(k, dtype=tf.float64) + scatter + beta0 * n / (beta0 + n) * tf.tensordot(average, average, 0)
    )
    precision = wishart_draw(tf.linalg.inv(inverse_scale), nu0 + n, seed)
    chol = tf.linalg.cholesky((beta0 + n) * precision)
    noise = tf.random.stateless_normal([k, 1], mean_seed, dtype=tf.float64)
    mean = n * average / (beta0 + n) + tf.linalg.triangular_solve(chol, noise, lower=True, adjoint=True)[:, 0]
    return mean, precision


@tf.function
def conditional_draw(
    gram: tf.Tensor, rhs: tf.Tensor, prior_mean: tf.Tensor, prior_precision: tf.Tensor, noise: tf.Tensor, seed
) -> tf.Tensor:
    """Draws every row's factors from its Gaussian conditional.

    Row ``r`` has precision ``P = prior_precision + noise * gram[r]`` and mean
    ``P^-1 (prior_precision @ prior_mean[r] + noise * rhs[r])`` (one prior mean for every
    row, or one per row); the draw adds ``L^-T z``
    (``L L^T = P``, ``z`` standard normal), whose covariance is ``P^-1``.
    """
    precision = prior_precision[None] + noise * gram
    chol = tf.linalg.cholesky(precision)
    b = (tf.linalg.matvec(prior_precision, prior_mean) + noise * rhs)[..., None]  # prior_mean [k] or [n, k]
    mean = tf.linalg.cholesky_solve(chol, b)
    z = tf.random.stateless_normal(tf.shape(b), seed, dtype=tf.float64)
    return (mean + tf.linalg.triangular_solve(chol, z, lower=True, adjoint=True))[..., 0]


@tf.function
def running_average_update(
    user_average: tf.Tensor, item_average: tf.Tensor, users: tf.Tensor, items: tf.Tensor, n: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Adds the sample ``users @ items^T`` as the ``n``-th term of the running average ``X Y^T``.

    ``(n - 1) / n * X Y^T + users items^T / n`` is the product of ``[a X, b users]`` and
    ``[a Y, b items]`` (``a = sqrt((n - 1) / n)``, ``b = sqrt(1 / n)``); QR of both and an
    SVD of the small core bring it back to the rank of ``X``, split evenly between the two
    sides. The average of the sampled predictions, not of the factors: the chain drifts
    along the factors' rotations, which leave each prediction unchanged.
    """
    rank = user_average.shape[1]
    a, b = tf.sqrt((n - 1.0) / n), tf.sqrt(1.0 / n)
    q_user, r_user = tf.linalg.qr(tf.concat([a * user_average, b * users], axis=1))
    q_item, r_item = tf.linalg.qr(tf.concat([a * item_average, b * items], axis=1))
    singular, left, right = tf.linalg.svd(r_user @ tf.transpose(r_item))
    scale = tf.sqrt(singular[:rank])
    # With fewer rows than columns the core is smaller than ``rank``: pad with zeros.
    padding = [[0, 0], [0, rank - tf.size(scale)]]
    return tf.pad(q_user @ (left[:, :rank] * scale), padding), tf.pad(
        q_item @ (right[:, :rank] * scale), padding
    )


@tf.function
def link_draw(
    features: tf.SparseTensor,
    targets: tf.Tensor,
    precision: tf.Tensor,
    link_precision: float,
    seed: tf.Tensor,
) -> tf.Tensor:
    """Draws the links ``B [f, k]`` of ``targets ~ features @ B`` (rows ~ N(., precision^-1)).

    With the prior ``B`` rows ~ N(0, (link_precision * precision)^-1) the posterior is
    matrix normal with row covariance ``A^-1``, ``A = F^T F + link_precision * I``, and
    column covariance ``precision^-1``. The draw perturbs the data and the prior with
    noise of those covariances and solves ``A B = F^T (targets + E1) + link_precision
    * E2`` by conjugate gradients (Papandreou & Yuille's perturb-and-optimise; Simm et
    al.'s Macau), so ``A`` (``f x f``) is never formed.
    """
    n, f, k = tf.shape(targets)[0], tf.cast(features.dense_shape[1], tf.int32), targets.shape[1]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    # Rows of z @ L^-1... with precision = L L^T: z L^-T has covariance precision^-1.
    chol = tf.linalg.cholesky(precision)

    def noise(rows, s):
        z = tf.random.stateless_normal([rows, k], s, dtype=tf.float64)
        return tf.transpose(tf.linalg.triangular_solve(chol, tf.transpose(z), lower=True, adjoint=True))

    rhs = tf.sparse.sparse_dense_matmul(features, targets + noise(n, seeds[0]), adjoint_a=True)
    rhs += tf.sqrt(tf.cast(link_precision, tf.float64)) * noise(f, seeds[1])

    def apply(v):
        return tf.sparse.sparse_dense_matmul(
            features, tf.sparse.sparse_dense_matmul(features, v), adjoint_a=True
        ) + (link_precision * v)

    return conjugate_gradients(apply, rhs)


def conjugate_gradients(apply, rhs: tf.Tensor, tolerance: float = 1e-6, max_steps: int = 500) -> tf.Tensor:
    """Solves ``apply(X) = rhs`` column by column for a symmetric positive definite ``apply``."""
    x = tf.zeros_like(rhs)
    r = rhs
    p = r
    rs = tf.reduce_sum(r * r, axis=0)
    stop = tolerance**2 * tf.maximum(tf.reduce_sum(rhs * rhs, axis=0), 1e-300)

    def step(i, x, r, p, rs):
        ap = apply(p)
        alpha = rs / tf.maximum(tf.reduce_sum(p * ap, axis=0), 1e-300)
        x, r = x + alpha * p, r - alpha * ap
        new = tf.reduce_sum(r * r, axis=0)
        return i + 1, x, r, r + (new / tf.maximum(rs, 1e-300)) * p, new

    _, x, *_ = tf.while_loop(
        lambda i, x, r, p, rs: tf.logical_and(i < max_steps, tf.reduce_any(rs > stop)), step, (0, x, r, p, rs)
    )
    return x
