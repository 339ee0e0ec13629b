"""Sequence models: windows aligned and leak-free, the planted-transition oracle, the
transition-count baseline, and histories given in the order they were met."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import Interactions, split
from tfrec.data.sequences import right_aligned, training_windows, user_sequences
from tfrec.errors import DataError
from tfrec.evaluation import ItemTransitions
from tfrec.training import train


def _log(rows: list[tuple[str, str, int]]) -> Interactions:
    return Interactions(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), name="log")


def test_windows_shift_targets_one_step_and_order_ties_by_row() -> None:
    # a's x3 and x4 share a timestamp: the row order decides (x4 was listed first).
    log = _log([("a", "x1", 1), ("a", "x2", 2), ("a", "x4", 3), ("a", "x3", 3), ("a", "x5", 9),
                ("b", "y2", 5), ("b", "y1", 4)])  # fmt: skip
    items = ["x1", "x2", "x3", "x4", "x5", "y1", "y2"]
    index = {item: j + 1 for j, item in enumerate(items)}
    inputs, targets = training_windows(log, items, length=3, what="test")
    named = [[[items[j - 1] if j else "" for j in row] for row in part] for part in (inputs, targets)]
    assert named[0] == [["x2", "x4", "x3"], ["", "", "x1"], ["", "", "y1"]]
    assert named[1] == [["x4", "x3", "x5"], ["", "", "x2"], ["", "", "y2"]]
    assert user_sequences(log, ["a", "b", "c"], items, 3, "test") == [
        [index["x4"], index["x3"], index["x5"]], [index["y1"], index["y2"]], []
    ]


def test_no_held_out_item_enters_an_input_or_a_stored_sequence(small) -> None:
    parts = split(small, "leave-last-out", validation="leave-last-out")
    model = tfrec.models.build("sasrec", parts.train, max_length=20)
    items = list(model.item_vocabulary)
    inputs, targets = training_windows(parts.train, items, 20, "test")
    in_train = set(zip(parts.train.frame.user_id, parts.train.frame.item_id))
    held = parts.test.frame.assign(index=parts.test.frame.item_id.map({i: j + 1 for j, i in enumerate(items)}))
    stored = dict(zip(model.user_vocabulary, model.data.sequences))
    for user, item, index in held[["user_id", "item_id", "index"]].itertuples(index=False):
        if (user, item) not in in_train and not np.isnan(index):
            assert int(index) not in stored[user], (user, item)
    # A step's target is the next step's input; a pad step has none, a real one has one.
    has = targets[:, :-1] > 0
    np.testing.assert_array_equal(inputs[:, 1:][has], targets[:, :-1][has])
    np.testing.assert_array_equal(has, inputs[:, :-1] > 0)
    assert (targets[:, -1] > 0).all()


def test_data_without_timestamps_is_refused_in_one_line(small) -> None:
    untimed = Interactions(small.frame.drop(columns="timestamp"), name="untimed")
    for name in ("sasrec", "gru4rec"):
        with pytest.raises(DataError, match=rf"^{name} needs timestamps to order each user's items; untimed has no "
                                            r"'timestamp' column$"):  # fmt: skip
            tfrec.models.build(name, untimed)
    with pytest.raises(DataError, match="item_transitions needs timestamps"):
        ItemTransitions(untimed)


def test_client_histories_become_right_aligned_sequences() -> None:
    left = tf.constant([[5, 6, 0, 0], [0, 7, 0, 8], [1, 2, 3, 4], [0, 0, 0, 0]], tf.int64)
    np.testing.assert_array_equal(
        right_aligned(left, 3).numpy(), [[0, 5, 6], [0, 7, 8], [2, 3, 4], [0, 0, 0]]
    )


def planted_log(seed: int = 0) -> tuple[Interactions, list[str]]:
    """40 users whose histories hold "A" always followed at once by "B" among random
    items, and 20 probe users whose training history ends with "A" (no "B" yet)."""
    rng = np.random.default_rng(seed)
    others = [f"i{j}" for j in range(30)]
    rows, probes = [], []
    for u in range(60):
        sequence = list(rng.choice(others, size=8, replace=False))
        if u < 40:
            at = int(rng.integers(0, 8))
            sequence[at:at] = ["A", "B"]
        else:
            sequence.append("A")
            probes.append(f"u{u}")
        rows += [(f"u{u}", item, t) for t, item in enumerate(sequence)]
    return _log(rows), probes


@pytest.mark.parametrize(("name", "settings"), [("sasrec", {}), ("gru4rec", {}), ("sasrec", {"sampled_negatives": 8})])
def test_a_planted_transition_is_learned(name, settings) -> None:
    """"A is always followed by B": a user whose latest item is A gets B first, from their
    stored sequence and from the same history given as a new user's; also when each
    softmax runs over 8 items drawn by count (of 32) instead of the catalogue."""
    data, probes = planted_log()
    model = train(name, data, seed=0, verbose=0, epochs=40, batch_size=16, learning_rate=5e-3, **settings).model
    ids, _ = model.recommend(probes, k=1)
    assert np.mean(ids[:, 0] == "B") >= 0.9, ids[:, 0]
    frame = data.frame
    histories = [frame.loc[frame.user_id == user, "item_id"].tolist() for user in probes]
    again, _ = model.recommend_from_history(histories, k=1)
    assert np.mean(again[:, 0] == "B") >= 0.9, again[:, 0]
    if name == "sasrec":  # the latest step's attention: over the known items read, summing to 1 per block
        weights = model.attention_to_history(["not-an-item", *histories[0]])
        assert weights["item_id"].tolist() == histories[0] and list(weights.columns[1:]) == ["block_1", "block_2"]
        assert np.allclose(weights.iloc[:, 1:].sum(axis=0), 1.0, atol=1e-5) and (weights.iloc[:, 1:] >= 0).all().all()


def test_transition_counts_follow_the_order_with_gaps_weighted() -> None:
    log = _log([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "y", 1), ("b", "x", 2)])
    baseline = ItemTransitions(log, window=2, last=2, decay=0.5)
    items = list(baseline.item_vocabulary)
    into = baseline.candidate_embedding(tf.constant(items)).numpy()  # row: item, column: from
    t = {(a, b): into[items.index(b), items.index(a)] for a in items for b in items}
    assert t["x", "y"] == 1.0 and t["y", "z"] == 1.0 and t["x", "z"] == 0.5 and t["y", "x"] == 1.0
    assert t["z", "x"] == 0.0 and t["z", "y"] == 0.0
    query = baseline.query_embedding(tf.constant(["a", "nobody"])).numpy()
    assert query[0, items.index("z")] == 1.0 and query[0, items.index("y")] == 0.5 and query[0, items.index("x")] == 0
    assert not query[1].any()
    planted, probes = planted_log()
    ids, _ = ItemTransitions(planted).recommend(probes, k=1)
    assert (ids[:, 0] == "B").all()


@pytest.mark.slow
def test_the_cli_trains_exports_and_serves_sasrec_on_movielens(ml100k_dir, tmp_path, monkeypatch, capsys) -> None:
    """`tfrec train sasrec --dataset movielens-100k --split leave-last-out`, exported and
    validated as a stock server loads it; a new session served from its items in order."""
    from tfrec.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["train", "sasrec", "--dataset", "movielens-100k", "--data-dir", str(ml100k_dir), "--split",
            "leave-last-out", "--epochs", "2", "--output", "runs/sasrec", "--export-dir", "exports/sasrec"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "baseline: popularity" in out and "exported and validated: exports/sasrec/1" in out
    served = tfrec.serving.ExportedModel("exports/sasrec/1")
    answer = served.run("recommend_from_history", history_item_ids=[["50", "172", "133"], ["1", "", ""]],
                        history_weights=np.ones((2, 3), np.float32), k=[5, 5])  # fmt: skip
    assert answer["item_ids"].shape == (2, 5) and not {"50", "172", "133"} & set(answer["item_ids"][0])
    served.close()
