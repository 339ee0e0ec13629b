"""deep_mf: one model class, its task and head chosen by ``feedback``."""

from __future__ import annotations

import numpy as np

import tfrec
from tfrec._keras import tf
from tfrec.data import split
from tfrec.training import train


def test_feedback_chooses_the_task_the_head_and_what_serving_defaults_to(small) -> None:
    parts = split(small, "random:0.2", seed=0)
    explicit = tfrec.models.build("deep_mf", parts.train)
    implicit = tfrec.models.build("deep_mf", parts.train, feedback="implicit")
    assert explicit.task == "rating" and explicit.head is not None
    assert (
        implicit.task == "retrieval" and implicit.head is None and implicit.objective.loss_name == "softmax"
    )
    # Explicit towers carry [f(e), 1, mu + b] / [g(e), b, 1]: two wider than the last hidden layer.
    width = explicit.config.hidden_units[-1]
    assert explicit.query_embedding(np.asarray(["u1"])).shape[1] == width + 2
    assert implicit.query_embedding(np.asarray(["u1"])).shape[1] == width
    default = tfrec.serving.ServingModule(implicit).signatures()["serving_default"]
    assert [spec.name for spec in tf.nest.flatten(default.structured_input_signature)] == ["user_id"]


def test_explicit_predictions_stay_in_the_rating_range(small) -> None:
    parts = split(small, "random:0.2", seed=0)
    model = train("deep_mf", parts.train, epochs=2, verbose=0).model
    frame = parts.test.frame
    scores = model.score(frame["user_id"], frame["item_id"])
    low, high = parts.train.frame["rating"].min(), parts.train.frame["rating"].max()
    assert scores.min() >= low and scores.max() <= high
