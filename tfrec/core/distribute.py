"""Losses under ``tf.distribute``: per-replica shares of global-batch means; data a model
deals out per replica itself."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import tf


@dataclass(frozen=True)
class PerReplicaData:
    """A dataset a model distributes itself (one element per replica and step, repeated
    without end) and the steps of one epoch: ``model.fit(data.dataset,
    steps_per_epoch=data.steps, ...)``, which is what ``tfrec.training.train`` does.

    Attributes:
        dataset: The strategy's distributed dataset.
        steps: Steps per epoch.
    """

    dataset: tf.distribute.DistributedDataset
    steps: int


def replica_mean(values: tf.Tensor) -> tf.Tensor:
    """Mean of per-example values as this replica's share of the global-batch mean.

    Under a ``tf.distribute`` strategy each replica sees part of the batch and the
    gradients are summed across replicas, so each replica divides by the global batch
    size; without a strategy this is the plain mean.
    """
    return tf.nn.compute_average_loss(tf.reshape(values, [-1]))


def replica_count() -> int:
    """Replicas the active ``tf.distribute`` strategy trains on (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def l2_penalty(weight: float, *rows: tf.Tensor) -> tf.Tensor:
    """``weight`` times the global-batch mean of the rows' summed squared norms (``[B, d]`` each)."""
    if not weight:
        return tf.zeros([])
    return weight * replica_mean(tf.add_n([tf.reduce_sum(tf.square(r), axis=1) for r in rows]))
