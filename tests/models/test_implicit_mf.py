"""implicit_mf: the objective options reach its RetrievalObjective; BPR and softmax both learn."""

from __future__ import annotations

import numpy as np

import tfrec
from tfrec.data import split
from tfrec.training import train


def test_config_reaches_the_objective(small) -> None:
    parts = split(small, "random:0.2", seed=0)
    model = tfrec.models.build("implicit_mf", parts.train, loss="bpr", temperature=0.5, l2=0.01)
    objective = model.objective
    assert (objective.loss_name, objective.temperature, objective.l2) == ("bpr", 0.5, 0.01)
    assert list(objective.item_counts) == list(model.data.item_counts)


def test_both_losses_lower_the_loss_over_epochs(small) -> None:
    parts = split(small, "random:0.2", seed=0)
    for loss in ("softmax", "bpr"):
        history = train("implicit_mf", parts.train, epochs=4, verbose=0, loss=loss).history["loss"]
        assert np.isfinite(history).all() and history[-1] < history[0], (loss, history)
