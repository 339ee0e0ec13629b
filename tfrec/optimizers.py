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

    Example:
        >>> model.compile(optimizer=tfrec.optimizers.LazyAdam(1e-3))
    """

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        lr = tf.cast(self.learning_rate, variable.dtype)
        step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1 = tf.cast(self.beta_1, variable.dtype)
        beta_2 = tf.cast(self.beta_2, variable.dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        epsilon = self.epsilon * tf.sqrt(1 - tf.pow(beta_2, step)) if self.adaptive_epsilon else self.epsilon
        key = self._var_key(variable)
        m = self._momentums[self._index_dict[key]]
        v = self._velocities[self._index_dict[key]]
        # A row may appear several times in a batch: sum its gradients first.
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))
