"""Optimizers tuned for embedding tables."""

from __future__ import annotations

from tfrec._keras import keras, tf


@keras.utils.register_keras_serializable(package="tfrec")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the embedding rows a batch touched.

    Keras's Adam turns a sparse (``IndexedSlices``) gradient into work over the whole
    table every step (it decays every row's moments and moves every row), so a step
    costs O(table size) and training slows down as the catalogue and user base grow
    (bench/scaling.py measured it). Here a sparse gradient updates the moments and
    weights of the rows in the batch only (the "lazy" Adam of large-scale embedding
    training); dense gradients (MLP layers) follow Keras's Adam exactly.

    Plain lazy updates lose what Adam's momentum would have done to a row between the
    batches that touch it (dense Adam keeps moving it, ~1/(1 - beta_1) = 10 times the
    one-step update in all): rarely seen rows then learn far less, which cost
    CiteULike-t (sparse) two_tower a third of its Recall@10. With ``catch_up=True`` a row
    touched again after k skipped steps first receives, in closed form, the k momentum
    steps dense Adam would have applied (``m / sqrt(v)`` scaled by the geometric sum of
    ``beta_1 / sqrt(beta_2)``; the learning rate's bias correction is taken at the
    current step and epsilon outside the decay, so it matches dense Adam closely rather
    than exactly), and :meth:`catch_up_all` (called by :class:`CatchUp` at each epoch's
    end) applies every row's pending steps. It costs one step count per table row.

    Example:
        >>> model.compile(optimizer=tfrec.optimizers.LazyAdam(1e-3, catch_up=True))
    """

    def __init__(self, learning_rate=0.001, catch_up: bool = False, **kwargs) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.catch_up = bool(catch_up)
        self._last_steps: dict = {}

    def build(self, var_list) -> None:
        built = getattr(self, "_built", False)
        super().build(var_list)
        if built or not self.catch_up:
            return
        for variable in var_list:
            if variable.shape.rank == 2:  # tables: the step each row was last moved by a sparse update
                last = self.add_variable_from_reference(variable, "last_step", shape=[variable.shape[0]])
                self._last_steps[self._var_key(variable)] = (variable, last)

    def _pending(self, m, v, skipped, alpha, epsilon, beta_1, beta_2):
        """The displacement of ``skipped`` dense-Adam steps on rows with moments m, v, and the decayed moments."""
        ratio = beta_1 / tf.sqrt(beta_2)
        skipped = tf.maximum(skipped, 0.0)[:, None]
        shift = alpha * m / (tf.sqrt(v) + epsilon) * ratio * (1 - tf.pow(ratio, skipped)) / (1 - ratio)
        return shift, m * tf.pow(beta_1, skipped), v * tf.pow(beta_2, skipped)

    def _coefficients(self, variable, step):
        lr = tf.cast(self.learning_rate, variable.dtype)
        beta_1 = tf.cast(self.beta_1, variable.dtype)
        beta_2 = tf.cast(self.beta_2, variable.dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        epsilon = self.epsilon * tf.sqrt(1 - tf.pow(beta_2, step)) if self.adaptive_epsilon else self.epsilon
        return alpha, epsilon, beta_1, beta_2

    def catch_up_all(self) -> None:
        """Applies every embedding row's pending momentum steps up to the current step."""
        for key, (variable, last) in self._last_steps.items():
            step = tf.cast(self.iterations, variable.dtype)
            if step < 1:
                continue
            m = self._momentums[self._index_dict[key]]
            v = self._velocities[self._index_dict[key]]
            # Only rows a sparse update has moved (last > 0): dense-gradient kernels and
            # untouched rows are already where dense Adam has them.
            moved = last > 0
            shift, m_new, v_new = self._pending(m, v, step - last, *self._coefficients(variable, step))
            keep = moved[:, None]
            variable.assign_sub(tf.where(keep, shift, tf.zeros_like(shift)))
            m.assign(tf.where(keep, m_new, m))
            v.assign(tf.where(keep, v_new, v))
            last.assign(tf.where(moved, tf.fill(tf.shape(last), step), last))

    def get_config(self) -> dict:
        return {**super().get_config(), "catch_up": self.catch_up}

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        step = tf.cast(self.iterations + 1, variable.dtype)
        alpha, epsilon, beta_1, beta_2 = self._coefficients(variable, step)
        key = self._var_key(variable)
        m = self._momentums[self._index_dict[key]]
        v = self._velocities[self._index_dict[key]]
        # A row may appear several times in a batch: sum its gradients first.
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        m_old, v_old = tf.gather(m, rows), tf.gather(v, rows)
        shift = 0.0
        variable_and_last = self._last_steps.get(key)
        if variable_and_last is not None:
            last = variable_and_last[1]  # catch_up: the steps dense Adam took while the rows sat out
            shift, m_old, v_old = self._pending(
                m_old, v_old, step - 1 - tf.gather(last, rows), alpha, epsilon, beta_1, beta_2
            )
            last.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), step), rows))
        m_rows = beta_1 * m_old + (1 - beta_1) * values
        v_rows = beta_2 * v_old + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(shift + alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))


class CatchUp(keras.callbacks.Callback):
    """Applies a catching-up :class:`LazyAdam`'s pending row updates at the end of each epoch."""

    def on_epoch_end(self, epoch, logs=None) -> None:
        optimizer = self.model.optimizer
        if isinstance(optimizer, LazyAdam) and optimizer.catch_up:
            with self.model.distribute_strategy.scope():
                optimizer.catch_up_all()
