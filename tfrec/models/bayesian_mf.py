"""Bayesian matrix factorization for explicit ratings, sampled by Gibbs sweeps in ``model.fit``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfrec._keras import keras, tf
from tfrec.core.ids import id_lookup, known
from tfrec.data.interactions import Interactions, as_interactions
from tfrec.data.model_data import ModelData
from tfrec.errors import TfrecError
from tfrec.models.gibbs import conditional_draw, link_draw, normal_wishart_draw, running_average_update
from tfrec.models.heads import clip_rating
from tfrec.models.recommender import Recommender
from tfrec.models.registry import boolean, check, non_negative, positive, positive_int, register

# Standard deviation of the factors' first state.
INIT_STDDEV = 0.1


@dataclass(frozen=True)
class BayesianMFConfig:
    """Hyperparameters of :class:`BayesianMF` and its training recipe (figures: bench/TUNING.md).

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
        if self.average_rank < self.embedding_dim:
            raise TfrecError(
                f"BayesianMFConfig.average_rank={self.average_rank} is invalid: must be at least "
                f"embedding_dim ({self.embedding_dim})"
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
class BayesianMF(Recommender):
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

    The sampler's seed is drawn at build time (``ModelData.seed``, from NumPy's global
    generator, which ``keras.utils.set_random_seed`` fixes), so seeded runs draw the same
    chain; the rating pattern the links regress on is stored by ``from_data``
    (:meth:`set_pattern`).

    Example:
        >>> model = tfrec.models.BayesianMF.from_data(split.train)
        >>> model.compile()
        >>> model.fit(tfrec.data.to_dataset(split.train, label="rating", batch_size=4096), epochs=400)
    """

    gradient_trained = False

    def __init__(self, config: BayesianMFConfig | None = None, data=None, serving: bool = False, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        self.embedding_dim, self.burn_in, self.average_rank = c.embedding_dim, c.burn_in, c.average_rank
        self.noise_precision, self.link_precision = c.noise_precision, c.link_precision
        self.num_ratings = self.data.ratings.count if c.implicit_feedback else 0
        self.seed = int(self.data.seed)

        # === State: the current sample, the running mean, the epoch's statistics ===
        self.user_lookup = id_lookup(self.user_vocabulary, "user_lookup")
        self.item_lookup = id_lookup(self.item_vocabulary, "item_lookup")
        self.n_users, self.n_items = len(self.user_vocabulary), len(self.item_vocabulary)
        k = self.embedding_dim
        # A serving copy keeps the sampler's state at one row: inference reads only the averages.
        users, items = (0, 0) if serving else (self.n_users, self.n_items)
        self.user_factors = self._state("user_factors", [users + 1, k], self._first_state(1))
        self.item_factors = self._state("item_factors", [items + 1, k], self._first_state(2))
        self.user_average = self._state("user_average", [self.n_users + 1, self.average_rank], "zeros")
        self.item_average = self._state("item_average", [self.n_items + 1, self.average_rank], "zeros")
        self.mu = self._state("global_mean", [], keras.initializers.Constant(self.data.ratings.mean))
        self.noise = self._state(
            "noise_precision", [], keras.initializers.Constant(self.noise_precision or 1.0)
        )
        self.epochs_sampled = self._state("epochs_sampled", [], "zeros", tf.int64)
        self.samples_averaged = self._state("samples_averaged", [], "zeros")
        # The training pattern (user row, item row) the links regress on, and the links.
        self.pattern = self._state("rating_pattern", [0 if serving else self.num_ratings, 2], "zeros", tf.int64)
        self.user_link = self._state("user_link", [items, k], "zeros")  # per rated item
        self.item_link = self._state("item_link", [users, k], "zeros")  # per rating user
        rows = max(users, items) + 1
        self.gram = _sampled_sum([rows, k, k])
        self.rhs = _sampled_sum([rows, k])
        self.squared_error = _sampled_sum([2])  # [sum of squared errors, ratings seen]
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.rmse_tracker = keras.metrics.RootMeanSquaredError(name="rmse")

    def for_serving(self) -> BayesianMF:
        """A copy with the averaged towers and the seen-items table only (no sampler state)."""
        copy = type(self)(self.config, self.data, serving=True, name=self.name)
        for mine, theirs in ((copy.user_average, self.user_average), (copy.item_average, self.item_average),
                             (copy.mu, self.mu)):  # fmt: skip
            mine.assign(theirs)
        copy.seen_items = self.seen_items
        return copy.build_now()

    def _state(self, name: str, shape: Sequence[int], initializer, dtype=tf.float32) -> tf.Variable:
        return self.add_weight(name=name, shape=shape, initializer=initializer, dtype=dtype, trainable=False)

    def _first_state(self, draw: int) -> keras.initializers.Initializer:
        """Normal factors with row 0 (unknown ids) at zero."""
        stddev, seed = INIT_STDDEV, self.seed

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

    def catalogue_parts(self) -> list[tf.Tensor]:
        """The averaged item factors and the global mean."""
        return [self.item_average, tf.reshape(self.mu, [1, 1])]

    # === Forward ===
    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query = self.query_from_index(self.user_lookup(inputs["user_id"]))
        candidate = self.candidate_from_index(self.item_lookup(inputs["item_id"]))
        return clip_rating(tf.reduce_sum(query * candidate, axis=1), self.data.ratings, training)

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
    def prepare(cls, train: Interactions, config: BayesianMFConfig) -> ModelData:
        """Vocabularies, rating statistics and the sampler's seed."""
        return ModelData.of(train, model=cls.registry_name, ratings=True, seed=True)

    @classmethod
    def from_data(cls, train: Interactions, config: BayesianMFConfig | None = None) -> BayesianMF:
        """The model for a training split, with its rating pattern stored (implicit feedback)."""
        model = super().from_data(train, config)
        if model.num_ratings:
            frame = as_interactions(train, "train").frame
            model.set_pattern(frame["user_id"].astype(str), frame["item_id"].astype(str))
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

class GibbsSweep(keras.callbacks.Callback):
    """Closes every epoch of a :class:`BayesianMF` fit with its Gibbs step (``model.sample()``)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.sample()
        if logs is not None:
            logs["noise_precision"] = float(self.model.noise.numpy())


