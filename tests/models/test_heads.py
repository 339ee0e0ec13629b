"""The objective and head layers compute what their formulas say (checked by hand in numpy)."""

from __future__ import annotations

import numpy as np
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import ModelData

DATA = ModelData(users=["u0", "u1", "u2"], items=["a", "b", "c"], item_counts=[6, 3, 1])


def _model(**kwargs) -> tfrec.models.ImplicitMF:
    config = tfrec.models.ImplicitMFConfig(embedding_dim=4, **kwargs)
    model = tfrec.models.ImplicitMF(config, DATA)
    rng = np.random.default_rng(0)
    model.query_tower.embedding.set_weights([rng.normal(size=(4, 4)).astype(np.float32)])
    model.candidate_tower.embedding.set_weights([rng.normal(size=(4, 4)).astype(np.float32)])
    return model


def _hand_softmax(model, users, items, temperature, logq):
    q = model.query_tower(tf.constant(users)).numpy().astype(np.float64)
    c = model.candidate_tower(tf.constant(items)).numpy().astype(np.float64)
    logits = q @ c.T / temperature
    if logq:
        counts = {"a": 6, "b": 3, "c": 1}
        logits -= np.log([counts[i] / 10 for i in items])[None, :]
    for row in range(len(items)):  # accidental hits: the same item elsewhere in the batch
        for col in range(len(items)):
            if col != row and items[col] == items[row]:
                logits[row, col] = -np.inf
    log_softmax = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    return float(-np.mean(np.diag(log_softmax)))


@pytest.mark.parametrize("logq", [True, False])
@pytest.mark.parametrize("temperature", [1.0, 0.2])
def test_in_batch_softmax_with_logq_matches_hand_computation(logq, temperature) -> None:
    model = _model(temperature=temperature, logq_correction=logq)
    users, items = ["u0", "u1", "u2", "u0"], ["a", "b", "c", "a"]
    loss = model.compute_loss({"user_id": tf.constant(users), "item_id": tf.constant(items)}).numpy()
    assert loss == pytest.approx(_hand_softmax(model, users, items, temperature, logq), rel=1e-5)


def test_logq_correction_changes_the_loss_by_the_log_probabilities() -> None:
    users, items = ["u0", "u1", "u2"], ["a", "b", "c"]
    batch = {"user_id": tf.constant(users), "item_id": tf.constant(items)}
    with_q = _model(logq_correction=True).compute_loss(batch).numpy()
    without = _model(logq_correction=False).compute_loss(batch).numpy()
    assert with_q != pytest.approx(without)


def test_bpr_loss_is_log_sigmoid_of_the_margin() -> None:
    model = _model(loss="bpr")
    tf.random.set_seed(3)
    batch = {"user_id": tf.constant(["u0", "u1"]), "item_id": tf.constant(["a", "b"])}
    loss = model.compute_loss(batch).numpy()
    q = model.query_tower(batch["user_id"]).numpy()
    pos = model.candidate_tower(batch["item_id"]).numpy()
    table = model.candidate_tower.from_index(tf.range(4, dtype=tf.int64)).numpy()
    # The sampled negatives are unknown here, but the loss must lie between the best and
    # worst case over all possible negatives.
    margins = np.stack([(q * (pos - table[j])).sum(1) for j in range(1, 4)])  # [negatives, batch]
    per_row = -np.log(1 / (1 + np.exp(-margins)))
    assert per_row.min(0).mean() - 1e-6 <= loss <= per_row.max(0).mean() + 1e-6


def test_extra_negatives_use_the_mixed_sampling_probability() -> None:
    model = tfrec.models.TwoTower(tfrec.models.TwoTowerConfig(embedding_dim=4, extra_negatives=2), DATA)
    rng = np.random.default_rng(1)
    model.query_tower.embedding.set_weights([rng.normal(size=(4, 4)).astype(np.float32)])
    model.candidate_tower.embedding.set_weights([rng.normal(size=(4, 4)).astype(np.float32)])
    model.objective.uniform_items = lambda shape: tf.constant([3, 2], tf.int64)  # "c", "b"
    users, items = ["u0", "u1"], ["a", "b"]
    loss = model.compute_loss({"user_id": tf.constant(users), "item_id": tf.constant(items)}).numpy()

    q = model.query_tower(tf.constant(users)).numpy().astype(np.float64)
    candidates = items + ["c", "b"]
    c = model.candidate_tower(tf.constant(candidates)).numpy().astype(np.float64)
    frequency = {"a": 0.6, "b": 0.3, "c": 0.1}
    # 2 in-batch slots drawn by frequency, 2 uniform slots over 3 items.
    expected = np.array([(2 * frequency[i] + 2 / 3) / 4 for i in candidates])
    logits = q @ c.T - np.log(expected)[None, :]
    logits[1, 3] = -np.inf  # u1's positive "b" drawn again as a negative: an accidental hit
    hand = -np.mean([logits[r, r] - np.log(np.exp(logits[r]).sum()) for r in range(2)])
    assert loss == pytest.approx(hand, rel=1e-5)


def test_hard_negative_mining_keeps_only_the_hardest_negatives() -> None:
    config = tfrec.models.TwoTowerConfig(embedding_dim=4, num_hard_negatives=1, logq_correction=False)
    model = tfrec.models.TwoTower(config, DATA)
    rng = np.random.default_rng(2)
    model.query_tower.embedding.set_weights([rng.normal(size=(4, 4)).astype(np.float32)])
    model.candidate_tower.embedding.set_weights([rng.normal(size=(4, 4)).astype(np.float32)])
    users, items = ["u0", "u1", "u2"], ["a", "b", "c"]
    loss = model.compute_loss({"user_id": tf.constant(users), "item_id": tf.constant(items)}).numpy()
    logits = (
        model.query_tower(tf.constant(users)).numpy().astype(np.float64)
        @ model.candidate_tower(tf.constant(items)).numpy().astype(np.float64).T
    )
    hand = []
    for row in range(3):
        hardest = max(logits[row, col] for col in range(3) if col != row)
        pair = np.array([logits[row, row], hardest])
        hand.append(-(pair[0] - np.log(np.exp(pair).sum())))
    assert loss == pytest.approx(np.mean(hand), rel=1e-5)


def test_rating_head_towers_dot_to_the_rating_and_predictions_are_clipped() -> None:
    stats = tfrec.data.RatingStats(mean=3.0, low=1.0, high=5.0, count=10)
    head = tfrec.models.RatingHead(2, 3, stats)
    head.user_bias.set_weights([np.array([[0.0], [0.5], [-0.25]], np.float32)])
    head.item_bias.set_weights([np.array([[0.0], [1.0], [0.0], [-2.0]], np.float32)])
    users, items = tf.constant([1, 2, 0], tf.int64), tf.constant([1, 3, 2], tf.int64)
    p = tf.constant([[1.0, 2.0], [0.5, -1.0], [3.0, 3.0]])
    q = tf.constant([[0.5, 0.5], [2.0, 1.0], [1.0, 1.0]])
    b_u, b_i = head.user_part(users), head.item_part(items)
    rating = head.rating(p, b_u, q, b_i).numpy()
    np.testing.assert_allclose(rating, [3.0 + 0.5 + 1.0 + 1.5, 3.0 - 0.25 - 2.0 + 0.0, 3.0 + 0.0 + 0.0 + 6.0])
    towers = tf.reduce_sum(head.query(p, b_u) * head.candidate(q, b_i), axis=1).numpy()
    np.testing.assert_allclose(towers, rating, rtol=1e-6)
    np.testing.assert_allclose(head.predict(tf.constant(rating)).numpy(), [5.0, 1.0, 5.0])
    assert head.predict(tf.constant(rating), training=True).numpy()[2] == pytest.approx(9.0)
    labels = tf.constant([5.0, 1.0, 5.0])
    assert float(head.loss(labels, tf.constant(rating))) == pytest.approx(np.mean((rating - [5.0, 1.0, 5.0]) ** 2))


def test_pointwise_objective_is_bce_plus_the_embeddings_penalty() -> None:
    objective = tfrec.models.PointwiseObjective(l2=0.5)
    logits, labels = np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, 1.0])
    rows = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], np.float32)
    got = float(objective.loss(tf.constant(labels, tf.float32), tf.constant(logits, tf.float32), tf.constant(rows)))
    bce = np.mean(np.log1p(np.exp(-logits)) * labels + np.log1p(np.exp(logits)) * (1 - labels))
    assert got == pytest.approx(bce + 0.5 * np.mean((rows**2).sum(1)), rel=1e-5)
