"""``RankingMetrics``: tfrec's top-K metrics in Keras's epoch logs, for EarlyStopping and friends."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from tfrec._keras import keras
from tfrec.data.interactions import Interactions, as_interactions
from tfrec.evaluation.evaluate import check_protocol, evaluate


class RankingMetrics(keras.callbacks.Callback):
    """Adds top-K metrics on a validation split to each epoch's logs (``val_recall@10``, ...).

    TFRS users read ``FactorizedTopK`` accuracy in ``fit``'s logs; tfrec computes the same
    kind of figure the fast chunked way :func:`tfrec.evaluate` does, over the whole
    catalogue with each user's training items left out. Put it before callbacks that read
    the metrics: Keras hands every callback the same logs, in list order.

    Args:
        train: The interactions the model trains on (left out of each user's ranking).
        validation: Held-out interactions to rank, e.g. a ``leave-last-out`` split of the
            training data (never the test split).
        k: Cut-off(s).
        protocol: ``full`` (default), ``sampled:N`` or ``cold-start``; None for a rating
            model: ``val_rmse`` and ``val_mae`` only.
        prefix: Prefix of the log keys.
        every: Evaluate every this many epochs (the others log nothing).

    Example:
        >>> parts = tfrec.data.split(split.train, "leave-last-out")   # validation from train
        >>> model.fit(tfrec.data.to_dataset(parts.train), epochs=20, callbacks=[
        ...     tfrec.evaluation.RankingMetrics(parts.train, parts.test, k=10),
        ...     tf.keras.callbacks.EarlyStopping(monitor="val_recall@10", mode="max", patience=2)])
    """

    def __init__(
        self,
        train: Interactions | pd.DataFrame,
        validation: Interactions | pd.DataFrame,
        *,
        k: int | Sequence[int] = 10,
        protocol: str | None = "full",
        prefix: str = "val_",
        every: int = 1,
    ) -> None:
        super().__init__()
        self.train = as_interactions(train, "train")
        self.validation = as_interactions(validation, "validation")
        self.k = k
        self.protocol = protocol
        self.prefix = prefix
        self.every = max(int(every), 1)

    def on_train_begin(self, logs=None) -> None:
        check_protocol(
            self.train, self.validation, task=self.model.task, k=self.k, protocol=self.protocol
        )

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every:
            return
        metrics = evaluate(self.model, self.train, self.validation, k=self.k, protocol=self.protocol)
        if logs is not None:
            logs.update({f"{self.prefix}{name}": value for name, value in metrics.items() if name != "users"})
