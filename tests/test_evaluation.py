"""Ranking metrics against a plain, obviously-correct numpy reference; protocols end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import split
from tfrec.evaluation import evaluate, rank_metrics, read_ncf_negatives
from tfrec.training import train


def reference(scores, excluded, relevant, ks):
    """Loops over users: sort by (-score, index), skip excluded, apply each definition."""
    per_user = []
    for s, ex, rel in zip(scores, excluded, relevant):
        if not rel.any():
            continue
        order = [j for j in sorted(range(len(s)), key=lambda j: (-s[j], j)) if not ex[j]]
        hits = [bool(rel[j]) for j in order]
        n_rel = int(rel.sum())
        row = {}
        for k in ks:
            top = hits[:k]
            row[f"precision@{k}"] = sum(top) / k
            row[f"recall@{k}"] = sum(top) / n_rel
            dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(top) if h)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(n_rel, k)))
            row[f"ndcg@{k}"] = dcg / idcg
            row[f"hit_rate@{k}"] = float(any(top))
            ap, found = 0.0, 0
            for r, h in enumerate(top):
                if h:
                    found += 1
                    ap += found / (r + 1)
            row[f"map@{k}"] = ap / min(n_rel, k)
        row["mrr"] = next((1 / (r + 1) for r, h in enumerate(hits) if h), 0.0)
        per_user.append(row)
    out = {key: float(np.mean([r[key] for r in per_user])) for key in per_user[0]}
    for k in ks:
        tops = set()
        for s, ex, rel in zip(scores, excluded, relevant):
            if rel.any():
                tops.update([j for j in sorted(range(len(s)), key=lambda j: (-s[j], j)) if not ex[j]][:k])
        out[f"coverage@{k}"] = len(tops) / scores.shape[1]
    out["users"] = float(len(per_user))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [7, 1000])
def test_metrics_match_reference_with_ties_and_empty_users(seed, chunk) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = 41, 29
    scores = rng.integers(0, 6, size=(n_users, n_items)).astype(np.float32)  # many ties
    excluded = rng.random((n_users, n_items)) < 0.2
    relevant = (rng.random((n_users, n_items)) < 0.12) & ~excluded
    relevant[3] = False  # a user with no test items
    relevant[5, 0] = excluded[5, 0] = True  # a relevant item that is also excluded
    ks = (1, 5, 10)
    got = rank_metrics(
        lambda rows: tf.constant(scores[rows]),
        np.arange(n_users),
        n_items,
        np.nonzero(excluded),
        np.nonzero(relevant),
        ks,
        chunk_size=chunk,
    )
    want = reference(scores, excluded, relevant, ks)
    assert set(got) == set(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


def test_metric_names_and_k_validation() -> None:
    scores = np.zeros((2, 3), np.float32)
    got = rank_metrics(lambda r: tf.constant(scores[r]), np.arange(2), 3, ([], []), ([0], [1]), (2,))
    assert sorted(got) == [
        "coverage@2",
        "hit_rate@2",
        "map@2",
        "mrr",
        "ndcg@2",
        "precision@2",
        "recall@2",
        "users",
    ]
    with pytest.raises(tfrec.TfrecError, match="exceeds the 3 candidate items"):
        rank_metrics(lambda r: tf.constant(scores[r]), np.arange(2), 3, ([], []), ([0], [1]), (4,))
    with pytest.raises(tfrec.TfrecError, match="positive integers"):
        rank_metrics(lambda r: tf.constant(scores[r]), np.arange(2), 3, ([], []), ([0], [1]), (0,))


def test_large_catalogue_is_chunked() -> None:
    # 3,000 users x 50,000 items in chunks of 256 users: each chunk holds ~51 MB of scores.
    n_users, n_items = 3000, 50_000
    rng = np.random.default_rng(0)
    rel = (np.arange(n_users), rng.integers(0, n_items, n_users))
    got = rank_metrics(
        lambda rows: tf.random.stateless_uniform([len(rows), n_items], [1, 2]),
        np.arange(n_users), n_items, ([], []), rel, (10,), chunk_size=256,
    )  # fmt: skip
    assert got["users"] == n_users and 0 <= got["recall@10"] < 0.01


@pytest.fixture(scope="module")
def trained(small):
    parts = split(small, "leave-last-out")
    return parts, train("biased_mf", parts.train, epochs=3, verbose=0).model


def test_full_protocol_end_to_end(trained) -> None:
    parts, model = trained
    metrics = evaluate(model, parts.train, parts.test, protocol="full", k=[5, 10])
    assert metrics["users"] == parts.test.num_users
    assert {"rmse", "mae", "recall@5", "ndcg@10", "map@10", "coverage@10", "mrr"} <= set(metrics)
    assert metrics["recall@10"] == metrics["hit_rate@10"]  # one test item per user
    assert 0 <= metrics["precision@10"] <= 0.1


def test_sampled_protocol_is_seeded_and_reads_ncf_files(trained, tmp_path) -> None:
    parts, model = trained
    a = evaluate(model, parts.train, parts.test, protocol="sampled:20", k=[5], seed=1)
    b = evaluate(model, parts.train, parts.test, protocol="sampled:20", k=[5], seed=1)
    assert a == b and a["users"] == len(parts.test)
    lines = []
    vocab = list(model.item_vocabulary)
    for user, item in zip(parts.test.frame["user_id"], parts.test.frame["item_id"]):
        seen = set(parts.train.frame.loc[parts.train.frame["user_id"] == user, "item_id"]) | {item}
        negatives = [v for v in vocab if v not in seen][:20]
        lines.append(f"({user},{item})\t" + "\t".join(negatives))
    path = tmp_path / "ml.test.negative"
    path.write_text("\n".join(lines) + "\n")
    cases = read_ncf_negatives(path)
    assert len(cases) == len(parts.test) and all(len(v) == 20 for v in cases.values())
    fixed = evaluate(model, parts.train, parts.test, protocol="sampled:20", negatives=cases, k=[5])
    assert 0 < fixed["hit_rate@5"] <= 1


def test_cold_start_protocol_ranks_only_cold_items(small) -> None:
    parts = split(small, "cold-items:0.2")
    model = train("biased_mf", parts.train, epochs=1, verbose=0).model
    metrics = evaluate(model, parts.train, parts.test, protocol="cold-start", k=[5])
    assert metrics["users"] == parts.test.num_users
    # An ID-only model scores every cold item the same (OOV), so the ranking is arbitrary.
    assert metrics["recall@5"] < 0.5


@pytest.mark.parametrize("protocol", ["sampled", "sampled:0", "full:3", "cold"])
def test_bad_protocols(trained, protocol) -> None:
    parts, model = trained
    with pytest.raises(tfrec.TfrecError, match="bad protocol"):
        evaluate(model, parts.train, parts.test, protocol=protocol)


def test_rating_metrics_match_numpy() -> None:
    y, p = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    assert tfrec.evaluation.rmse(y, p) == pytest.approx(np.sqrt((0.25 + 0 + 1) / 3))
    assert tfrec.evaluation.mae(y, p) == pytest.approx(0.5)
    with pytest.raises(tfrec.TfrecError, match="3 true ratings but 2 predictions"):
        tfrec.evaluation.rmse(y, p[:2])


def test_popularity_is_a_full_scorer(small) -> None:
    parts = tfrec.data.split(small, "random:0.2", seed=0)
    baseline = tfrec.evaluation.Popularity(parts.train)
    counts = parts.train.frame["item_id"].value_counts()
    ids, scores = baseline.recommend(["anyone"], k=3)
    np.testing.assert_array_equal(scores[0], counts.to_numpy()[:3].astype(np.float32))
    assert set(ids[0]) <= set(counts.index[counts >= counts.iloc[2]])
    np.testing.assert_array_equal(baseline.score(["x", "y"], [counts.index[0], "nope"]), [counts.iloc[0], 0.0])
    neighbours, _ = baseline.similar_items([counts.index[0]], k=2)
    assert counts.index[0] not in neighbours[0]
