"""Implicit ALS (weighted matrix factorization solved in closed form) inside ``model.fit``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tfrec._keras import keras, tf
from tfrec.core.distribute import PerReplicaData
from tfrec.core.ids import id_lookup, known
from tfrec.data.interactions import RATING, WEIGHT, Interactions
from tfrec.data.seen import index_pairs
from tfrec.data.vocabulary import Vocabulary
from tfrec.models.heads import CONFIDENCES
from tfrec.models.recommender import Recommender
from tfrec.models.registry import check, non_negative, one_of, positive, positive_int, register

SOLVERS = ("cg", "cholesky")
# Padded (row, neighbour) slots per training step: small enough that a step's gathered
# neighbour factors stay in cache (bench/ials_quality.py), large enough to amortize a step.
ENTRIES = 1 << 14


@dataclass(frozen=True)
class IALSConfig:
    """Hyperparameters of :class:`IALS`.

    The objective (Hu, Koren & Volinsky 2008, in the form of Rendle et al. 2021/2022)::

        sum_{(u,i) observed} c_ui (<w_u, h_i> - 1)^2  +  unobserved_weight * sum_{all u,i} <w_u, h_i>^2
        + regularization * sum_u (n_u + unobserved_weight * I) ** regularization_exponent * |w_u|^2
        + (the same for items)

    The defaults of ``regularization`` and ``unobserved_weight`` are the grid point
    bench/ials_quality.py chose on the validation splits (leave-last-out of the training
    part) of both ML-100K and ml-latest-small.

    Attributes:
        embedding_dim: Latent factors per user and item.
        regularization: L2 weight (lambda), scaled per row by its frequency (below).
        regularization_exponent: ``nu``: a row's L2 weight grows as
            ``(interactions + unobserved_weight * other side's size) ** nu`` (0: plain L2).
        unobserved_weight: ``alpha_0``, the weight of every (user, item) pair's square,
            applied through the Gramian (the dense matrix is never formed).
        confidence: How an observed pair's weight comes from its value (its ``weight``,
            e.g. a play count, where the data has one; else its rating; else how many
            times it occurs): ``binary`` (``alpha``), ``linear`` (``alpha * value``)
            or ``log`` (``alpha * log(1 + value)``).
        alpha: Scale of the observed pairs' confidence.
        solver: ``cg`` (conjugate-gradient steps warm-started from the current factors,
            matrix-free: cost linear in the interactions) or ``cholesky`` (exact batched
            solves; memory rows x longest row x d, for small data and small d).
        cg_steps: Conjugate-gradient steps per row per sweep.
        init_stddev: Standard deviation of the initial factors.
        epochs: Sweeps (users, then items).
        batch_size: Rows solved per training step.
    """

    embedding_dim: int = 128
    regularization: float = 0.01
    regularization_exponent: float = 1.0
    unobserved_weight: float = 0.1
    confidence: str = "binary"
    alpha: float = 1.0
    solver: str = "cg"
    cg_steps: int = 3
    init_stddev: float = 0.01
    epochs: int = 10
    batch_size: int = 1024

    def __post_init__(self) -> None:
        check(
            self,
            {
                "embedding_dim": (positive_int, "a positive integer"),
                "regularization": (non_negative, "a number >= 0"),
                "regularization_exponent": (non_negative, "a number >= 0"),
                "unobserved_weight": (non_negative, "a number >= 0"),
                "confidence": one_of(*CONFIDENCES),
                "alpha": (positive, "a number > 0"),
                "solver": one_of(*SOLVERS),
                "cg_steps": (positive_int, "a positive integer"),
                "init_stddev": (positive, "a number > 0"),
                "epochs": (positive_int, "a positive integer"),
                "batch_size": (positive_int, "a positive integer"),
            },
        )


def confidences(values: np.ndarray, kind: str, alpha: float) -> np.ndarray:
    """Observed pairs' weights from their values (ratings or occurrence counts)."""
    values = np.asarray(values, np.float64)
    if kind == "binary":
        weight = np.full(values.shape, alpha)
    elif kind == "linear":
        weight = alpha * values
    else:
        weight = alpha * np.log1p(np.maximum(values, 0.0))
    return np.maximum(weight, 0.0).astype(np.float32)


def pair_table(train: Interactions, vocabulary: Vocabulary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user index, item index, value) of a split: value = summed weights (play
    counts), else summed ratings, else counts."""
    frame = train.frame
    column = WEIGHT if WEIGHT in frame.columns else RATING if RATING in frame.columns else None
    values = None if column is None else frame[column].to_numpy(np.float64)
    return index_pairs(train, vocabulary.users, vocabulary.items, values)


def row_batches(
    rows: np.ndarray,
    others: np.ndarray,
    weights: np.ndarray,
    num_rows: int,
    batch_size: int,
    entries: int = ENTRIES,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Batches of rows 1..num_rows with their neighbours padded: (rows, neighbours, weights, counts).

    Rows are taken in order of their number of interactions and cut into batches of at
    most ``batch_size`` rows and ``entries`` padded (row, neighbour) slots, so padding
    stays small and each step's tensors stay bounded. Every row is solved once per sweep,
    those without interactions included (they go to zero under the Gramian term and the
    regularization). Padding has neighbour 0 and weight 0.
    """
    order = np.argsort(rows, kind="stable")
    rows, others, weights = rows[order], others[order], weights[order]
    offsets = np.searchsorted(rows, np.arange(1, num_rows + 2))
    counts = np.diff(offsets)
    by_length = np.argsort(counts, kind="stable") + 1  # row indices, shortest first
    start = 0
    while start < num_rows:
        stop = start + 1
        while (
            stop < num_rows
            and stop - start < batch_size
            and (stop + 1 - start) * counts[by_length[stop] - 1] <= entries
        ):
            stop += 1
        chosen = by_length[start:stop]
        width = max(int(counts[chosen - 1].max()), 1)
        neighbours = np.zeros((len(chosen), width), np.int64)
        weight = np.zeros((len(chosen), width), np.float32)
        for slot, row in enumerate(chosen):
            lo, hi = offsets[row - 1], offsets[row]
            neighbours[slot, : hi - lo] = others[lo:hi]
            weight[slot, : hi - lo] = weights[lo:hi]
        yield chosen.astype(np.int64), neighbours, weight, counts[chosen - 1].astype(np.float32)
        start = stop


@register(
    "ials",
    config=IALSConfig,
    task="retrieval",
    description="Implicit ALS: weighted MF solved in closed form (CG or Cholesky), a sweep per epoch",
    paper="Hu, Koren & Volinsky 2008; Rendle et al. 2021 (iALS++), 2022 (Revisiting iALS)",
)
class IALS(Recommender):
    """score(user, item) = <w_u, h_i>, fitted by alternating least squares.

    ``model.fit`` on :meth:`training_data` runs one sweep per epoch: first every user's
    factors are solved with the item factors fixed, then every item's. Each training step
    solves a batch of rows from their normal equations
    ``(unobserved_weight * G + sum_i c_ui h_i h_i^T + lambda_u I) w_u = sum_i c_ui h_i``,
    ``G`` the other side's Gramian (computed once per half sweep, never the dense
    matrix); by conjugate gradients warm-started from the current factors (matrix-free,
    linear in the interactions) or by batched Cholesky. No gradients, so ``compile``
    needs no optimizer. The towers are the factor tables, so evaluation, ``recommend`` and
    the export work as for every factorization model. Unknown ids get zero factors.

    Under a multi-replica ``tf.distribute`` strategy (``MirroredStrategy``,
    ``MultiWorkerMirroredStrategy``) each step gives every replica its own batch of rows
    of the same side (:meth:`training_data` deals them out per input pipeline); each
    replica solves its rows against its copy of the fixed side (the Gramian computed from
    that copy), the solved rows are all-gathered and every replica writes all of them,
    so the factor tables stay identical everywhere and a sweep solves each row once, as
    on one device.

    Example:
        >>> model = tfrec.models.build("ials", split.train)
        >>> model.compile()
        >>> model.fit(tfrec.models.IALS.training_data(split.train, tfrec.models.IALSConfig()), epochs=10)
    """

    gradient_trained = False

    def __init__(self, config: IALSConfig | None = None, data=None, **kwargs) -> None:
        super().__init__(config, data, **kwargs)
        c = self.config
        self.embedding_dim, self.regularization = c.embedding_dim, c.regularization
        self.regularization_exponent, self.unobserved_weight = c.regularization_exponent, c.unobserved_weight
        self.solver, self.cg_steps, self.init_stddev = c.solver, c.cg_steps, c.init_stddev

        # === Layers and state ===
        self.user_lookup = id_lookup(self.user_vocabulary, "user_lookup")
        self.item_lookup = id_lookup(self.item_vocabulary, "item_lookup")
        d = self.embedding_dim
        self.user_factors = self.add_weight(
            name="user_factors",
            shape=(len(self.user_vocabulary) + 1, d),
            initializer=self._normal(),
            trainable=False,
        )
        self.item_factors = self.add_weight(
            name="item_factors",
            shape=(len(self.item_vocabulary) + 1, d),
            initializer=self._normal(),
            trainable=False,
        )
        # The fixed side's Gramian (with the unknown row left out), refreshed each half sweep.
        self.gramian = self.add_weight(
            name="gramian",
            shape=(d, d),
            initializer="zeros",
            trainable=False,
        )
        self.loss_tracker = keras.metrics.Mean("loss")

    def _normal(self) -> keras.initializers.Initializer:
        return keras.initializers.RandomNormal(0.0, self.init_stddev)

    @property
    def metrics(self) -> list:
        return [self.loss_tracker]

    # === Towers ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.user_lookup(user_ids)

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_lookup(item_ids)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``w_u`` (zero for unknown users)."""
        return tf.gather(self.user_factors, index) * known(index)[:, None]

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``h_i`` (zero for unknown items)."""
        return tf.gather(self.item_factors, index) * known(index)[:, None]

    def catalogue_parts(self) -> list[tf.Tensor]:
        """The item factors."""
        return [self.item_factors]

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        queries = self.query_from_index(self.user_lookup(inputs["user_id"]))
        candidates = self.candidate_from_index(self.item_lookup(inputs["item_id"]))
        return tf.reduce_sum(queries * candidates, axis=1)

    # === Training: closed-form solves, no gradients ===
    def compile(self, optimizer=None, **kwargs) -> None:
        """Keras ``compile``; there is no optimizer (the factors are solved, not stepped)."""
        super().compile(optimizer=optimizer or "sgd", **kwargs)

    def train_step(self, data) -> dict[str, tf.Tensor]:
        """Solves one batch of rows of the side ``data["side"]`` names (0 users, 1 items).

        The solve only reads the variables; the writes come after it, outside any
        conditional, so under a multi-replica strategy every replica writes every
        replica's rows (all-gathered) to its copy of the tables.
        """
        users_side = tf.equal(data["side"], 0)
        x, gramian, objective = tf.cond(
            users_side,
            lambda: self._solve(self.user_factors, self.item_factors, data),
            lambda: self._solve(self.item_factors, self.user_factors, data),
        )
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            self._write(users_side, data["rows"], x, gramian)
        else:  # every replica's rows, written to every copy from the cross-replica context
            # tf.identity places the input's rows on this replica's device (a gather needs one).
            rows, x = context.all_gather(tf.identity(data["rows"]), axis=0), context.all_gather(x, axis=0)
            context.merge_call(self._write_everywhere, args=(users_side, rows, x, gramian))
        # The mean objective of the batch's real rows (row 0 pads the per-replica batches);
        # an empty batch does not count, so the epoch's figure is the one-device figure.
        real = tf.cast(data["rows"] > 0, tf.float32)
        count = tf.reduce_sum(real)
        batch_mean = tf.reduce_sum(objective * real) / tf.maximum(count, 1.0)
        self.loss_tracker.update_state(batch_mean, sample_weight=tf.minimum(count, 1.0))
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data) -> dict[str, tf.Tensor]:
        return {"loss": self.loss_tracker.result()}

    def _write(
        self, users_side: tf.Tensor, rows: tf.Tensor, x: tf.Tensor, gramian: tf.Tensor, update=None
    ) -> None:
        """Writes solved rows to their side's table (the other side gets an empty update)
        and the Gramian; ``update(variable, write, args)`` applies a write (default: to the
        variable itself)."""
        update = update or (lambda variable, write, args: write(variable, *args))
        users = tf.where(users_side, tf.shape(rows)[0], 0)

        def scatter(variable, index, values):
            return variable.scatter_update(tf.IndexedSlices(values, index))

        update(self.user_factors, scatter, (rows[:users], x[:users]))
        update(self.item_factors, scatter, (rows[users:], x[users:]))
        update(self.gramian, lambda variable, value: variable.assign(value), (gramian,))

    def _write_everywhere(self, strategy, users_side, rows, x, gramian) -> None:
        """Cross-replica context: the (all-gathered, so identical) values of this worker's
        first replica written to every local copy of the tables."""
        side, rows, x, gramian = [
            strategy.experimental_local_results(v)[0] for v in (users_side, rows, x, gramian)
        ]
        real = rows > 0  # row 0 pads the per-replica batches: nothing to write
        rows, x = tf.boolean_mask(rows, real), tf.boolean_mask(x, real)
        self._write(
            side,
            rows,
            x,
            gramian,
            lambda variable, write, args: strategy.extended.update(variable, write, args=args),
        )

    def _solve(
        self, solved: tf.Variable, fixed: tf.Variable, data: dict[str, tf.Tensor]
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """New factors of rows ``data["rows"]`` of ``solved`` (nothing is written).

        Returns:
            ``(x, gramian, objective)``: the rows' factors, the fixed side's Gramian
            (recomputed when ``data["fresh"]`` opens a half sweep, else the stored one) and
            each row's objective.
        """
        rows, weights, counts = data["rows"], data["weights"], data["counts"]
        table = fixed[1:]  # the unknown row (index 0) is not part of the data
        fixed_gramian = tf.cond(
            data["fresh"],
            lambda: tf.matmul(table, table, transpose_a=True),
            lambda: tf.identity(self.gramian),
        )
        gramian = self.unobserved_weight * fixed_gramian
        y = tf.gather(fixed, data["neighbours"])  # [B, L, d]; padding has weight 0
        other_size = tf.cast(tf.shape(table)[0], tf.float32)
        reg = self.regularization * tf.pow(
            counts + self.unobserved_weight * other_size, self.regularization_exponent
        )
        rhs = tf.einsum("bl,bld->bd", weights, y)
        if self.solver == "cholesky":
            x = self._cholesky(gramian, y, weights, reg, rhs)
            residual = rhs - self._apply(gramian, y, weights, reg, x)
        else:
            x, residual = self._conjugate_gradient(gramian, y, weights, reg, rhs, tf.gather(solved, rows))
        # Objective of these rows (the constant sum of c_ui left out): x^T A x - 2 x^T b,
        # = -x^T r - x^T b with r = b - A x, the residual CG keeps (no extra product).
        return x, fixed_gramian, -tf.reduce_sum(x * (residual + rhs), axis=1)

    @staticmethod
    def _apply(gramian, y, weights, reg, x) -> tf.Tensor:
        """``A x`` for every row at once, without forming ``A`` (two batched matmuls)."""
        along = tf.einsum("bld,bd->bl", y, x) * weights  # c_ui <h_i, x_u>
        return tf.matmul(x, gramian) + tf.einsum("bl,bld->bd", along, y) + reg[:, None] * x

    def _conjugate_gradient(self, gramian, y, weights, reg, rhs, x) -> tuple[tf.Tensor, tf.Tensor]:
        """``cg_steps`` batched conjugate-gradient steps from the warm start ``x``; (x, residual)."""
        r = rhs - self._apply(gramian, y, weights, reg, x)
        p = r
        rr = tf.reduce_sum(r * r, axis=1)
        for _ in range(self.cg_steps):
            ap = self._apply(gramian, y, weights, reg, p)
            step = rr / tf.maximum(tf.reduce_sum(p * ap, axis=1), 1e-20)
            x = x + step[:, None] * p
            r = r - step[:, None] * ap
            rr_next = tf.reduce_sum(r * r, axis=1)
            p = r + (rr_next / tf.maximum(rr, 1e-20))[:, None] * p
            rr = rr_next
        return x, r

    @staticmethod
    def _cholesky(gramian, y, weights, reg, rhs) -> tf.Tensor:
        """Exact solves: ``A`` per row (a batched matmul), then batched Cholesky."""
        a = tf.einsum("bld,ble->bde", y * weights[:, :, None], y) + gramian[None]
        a += tf.linalg.diag(tf.repeat(reg[:, None], tf.shape(gramian)[0], axis=1))
        return tf.linalg.cholesky_solve(tf.linalg.cholesky(a), rhs[:, :, None])[:, :, 0]

    @classmethod
    def working_bytes(cls, config: IALSConfig, data) -> int:
        """The Gramians (d x d), a batch's gathered neighbours (up to ``ENTRIES`` slots of
        d floats, in about three live copies) and its solve: ``batch_size`` d x d systems
        for Cholesky, a few d-vectors per row for conjugate gradients."""
        d, rows = config.embedding_dim, config.batch_size
        per_row = 2 * d * d if config.solver == "cholesky" else 16 * d
        return 4 * (2 * d * d + 3 * ENTRIES * d + rows * per_row)

    # === Training data ===
    @classmethod
    def training_data(
        cls, train: Interactions, config: IALSConfig, seed: int = 0
    ) -> tf.data.Dataset | PerReplicaData:
        """One sweep per epoch: batches of user rows, then of item rows, with their pairs.

        Each element is ``{"side", "fresh", "rows", "neighbours", "weights", "counts"}``:
        the side (0 users, 1 items), whether it opens its half sweep (the Gramian is then
        recomputed), the row indices, each row's neighbours on the other side and their
        confidences (padded with index 0 and weight 0; rows of similar length share a
        batch, see :func:`row_batches`) and its number of interactions. Built once and
        cached; the cardinality is known, so ``train`` runs several steps per graph call.
        Called under a multi-replica strategy's scope, it returns
        :class:`tfrec.core.distribute.PerReplicaData` instead (the strategy's distributed
        dataset, every step one batch per replica, and the steps of a sweep).
        """
        vocabulary = Vocabulary.from_interactions(train)
        users, items, values = pair_table(train, vocabulary)
        weights = confidences(values, config.confidence, config.alpha)
        sides = (
            (0, users, items, len(vocabulary.users)),
            (1, items, users, len(vocabulary.items)),
        )

        batches = [
            {
                "side": np.int32(side),
                "fresh": np.bool_(number == 0),
                "rows": batch_rows,
                "neighbours": neighbours,
                "weights": batch_weights,
                "counts": counts,
            }
            for side, rows, others, num_rows in sides
            for number, (batch_rows, neighbours, batch_weights, counts) in enumerate(
                row_batches(rows, others, weights, num_rows, config.batch_size)
            )
        ]
        strategy = tf.distribute.get_strategy()
        if strategy.num_replicas_in_sync > 1:
            return _per_replica(batches, strategy)
        return (
            _dataset(batches).apply(tf.data.experimental.assert_cardinality(len(batches))).cache().prefetch(2)
        )


SIGNATURE = {
    "side": tf.TensorSpec([], tf.int32),
    "fresh": tf.TensorSpec([], tf.bool),
    "rows": tf.TensorSpec([None], tf.int64),
    "neighbours": tf.TensorSpec([None, None], tf.int64),
    "weights": tf.TensorSpec([None, None], tf.float32),
    "counts": tf.TensorSpec([None], tf.float32),
}


def _dataset(batches: list[dict]) -> tf.data.Dataset:
    def elements():
        yield from batches

    return tf.data.Dataset.from_generator(elements, output_signature=SIGNATURE)


def _padded(batch: dict, rows: int, width: int, fresh: bool) -> dict:
    """``batch`` padded to ``rows`` rows of ``width`` neighbours (row 0, weight 0: no-ops)."""
    grow = rows - len(batch["rows"])
    pad = ((0, grow), (0, width - batch["neighbours"].shape[1]))
    return {
        "side": batch["side"],
        "fresh": np.bool_(fresh),
        "rows": np.pad(batch["rows"], (0, grow)),
        "neighbours": np.pad(batch["neighbours"], pad),
        "weights": np.pad(batch["weights"], pad),
        "counts": np.pad(batch["counts"], (0, grow)),
    }


def _per_replica(batches: list[dict], strategy) -> PerReplicaData:
    """The sweep dealt out to ``R`` replicas: each step gives every replica a batch of the
    same side, padded to the step's common shape (the solved rows are all-gathered);
    a side's batches are padded to a multiple of ``R`` with empty batches, and every
    replica's first batch of a side opens the half sweep (``fresh``)."""
    replicas = strategy.num_replicas_in_sync
    steps: list[list[dict]] = []
    for side in (0, 1):
        mine = [b for b in batches if int(b["side"]) == side]
        empty = {"side": np.int32(side), "rows": np.zeros(1, np.int64), "neighbours": np.zeros((1, 1), np.int64),
                 "weights": np.zeros((1, 1), np.float32), "counts": np.zeros(1, np.float32)}  # fmt: skip
        mine += [empty] * (-len(mine) % replicas)
        for start in range(0, len(mine), replicas):
            group = mine[start : start + replicas]
            rows = max(len(b["rows"]) for b in group)
            width = max(b["neighbours"].shape[1] for b in group)
            steps.append([_padded(b, rows, width, start == 0) for b in group])

    def dataset(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local
        # Consecutive elements go to this pipeline's replicas in turn; Keras does not
        # restart a distributed dataset each epoch, so it repeats (an epoch is `steps`).
        return (
            _dataset([step[first + r] for step in steps for r in range(local)]).cache().repeat().prefetch(2)
        )

    return PerReplicaData(strategy.distribute_datasets_from_function(dataset), len(steps))
