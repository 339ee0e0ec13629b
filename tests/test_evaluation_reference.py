"""``tfrec.evaluate``'s protocols against a plain NumPy reference on a model with known scores."""

from __future__ import annotations

import numpy as np
import pytest

import tfrec
from tfrec.data import split

K = 5


@pytest.fixture(scope="module")
def known(small):
    """A model whose scores are fixed random factors (no training), and its split."""
    parts = split(small, "leave-last-out", seed=0)
    model = tfrec.models.build("ials", parts.train, embedding_dim=8)
    rng = np.random.default_rng(7)
    model.user_factors.assign(rng.normal(size=model.user_factors.shape).astype(np.float32))
    model.item_factors.assign(rng.normal(size=model.item_factors.shape).astype(np.float32))
    return model, parts


def _reference(
    scores: np.ndarray, relevant: list[set[int]], excluded: list[set[int]], k: int
) -> dict[str, float]:
    """Per-user ranking by descending score with exclusions, averaged the documented way."""
    recall, ndcg, hit, precision, mrr = [], [], [], [], []
    for row, (rel, exc) in enumerate(zip(relevant, excluded)):
        s = scores[row].astype(np.float64).copy()
        s[list(exc)] = -np.inf
        order = np.argsort(-s, kind="stable")
        top = order[:k]
        hits = [int(j in rel) for j in top]
        recall.append(sum(hits) / len(rel))
        precision.append(sum(hits) / k)
        hit.append(float(any(hits)))
        dcg = sum(h / np.log2(i + 2) for i, h in enumerate(hits))
        ideal = sum(1 / np.log2(i + 2) for i in range(min(len(rel), k)))
        ndcg.append(dcg / ideal)
        ranks = [int(np.flatnonzero(order == j)[0]) + 1 for j in rel]
        mrr.append(1 / min(ranks))
    return {f"recall@{k}": np.mean(recall), f"ndcg@{k}": np.mean(ndcg), f"hit_rate@{k}": np.mean(hit),
            f"precision@{k}": np.mean(precision), "mrr": np.mean(mrr)}  # fmt: skip


def _scores(model, users) -> np.ndarray:
    return model.score_all(
        model.query_embedding(np.asarray(users, dtype=object)), model.catalogue_embeddings()
    ).numpy()


def test_full_ranking_matches_the_reference_and_leaves_out_training_items(known) -> None:
    model, parts = known
    catalogue = {item: j for j, item in enumerate(model.item_vocabulary)}
    users = sorted(set(parts.test.frame["user_id"]))
    train, test = parts.train.frame, parts.test.frame
    relevant = [
        {catalogue[i] for i in test.loc[test["user_id"] == u, "item_id"] if i in catalogue} for u in users
    ]
    excluded = [{catalogue[i] for i in train.loc[train["user_id"] == u, "item_id"]} for u in users]
    keep = [n for n, rel in enumerate(relevant) if rel]
    want = _reference(_scores(model, [users[n] for n in keep]), [relevant[n] for n in keep],
                      [excluded[n] for n in keep], K)  # fmt: skip
    got = tfrec.evaluate(model, parts.train, parts.test, k=K)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name
    # Without leaving training items out, the figures differ: the exclusion is really applied.
    unexcluded = _reference(_scores(model, [users[n] for n in keep]), [relevant[n] for n in keep],
                            [set() for _ in keep], K)  # fmt: skip
    assert unexcluded["mrr"] != pytest.approx(got["mrr"], abs=1e-6)


def test_cold_start_ranks_only_cold_items(known, small) -> None:
    model, _ = known
    cold = split(small, "cold-items:0.2", seed=3)
    catalogue = sorted(set(cold.test.frame["item_id"]) - set(cold.train.frame["item_id"]))
    # The known model's catalogue is the warm one: embed cold items through their ids (OOV -> 0 vector
    # for items it never saw), so the reference uses the same candidate embeddings tfrec does.
    users = sorted(set(cold.test.frame["user_id"]))
    queries = model.query_embedding(np.asarray(users, dtype=object)).numpy()
    items = model.candidate_embedding(np.asarray(catalogue, dtype=object)).numpy()
    position = {item: j for j, item in enumerate(catalogue)}
    test = cold.test.frame
    relevant = [
        {position[i] for i in test.loc[test["user_id"] == u, "item_id"] if i in position} for u in users
    ]
    keep = [n for n, rel in enumerate(relevant) if rel]
    want = _reference((queries @ items.T)[keep], [relevant[n] for n in keep], [set() for _ in keep], K)
    got = tfrec.evaluate(model, cold.train, cold.test, k=K, protocol="cold-start")
    assert got["users"] == len(keep)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name


def test_sampled_protocol_replays_a_negatives_file(known, tmp_path) -> None:
    model, parts = known
    test = parts.test.frame.head(40)
    rng = np.random.default_rng(1)
    vocabulary = np.asarray(model.item_vocabulary, dtype=object)
    lines, cases = [], []
    for user, item in zip(test["user_id"], test["item_id"]):
        negatives = [n for n in rng.choice(vocabulary, 30, replace=False) if n != item][:20]
        lines.append(f"({user},{item})\t" + "\t".join(negatives))
        cases.append((user, item, negatives))
    path = tmp_path / "test.negative"
    path.write_text("\n".join(lines) + "\n")
    got = tfrec.evaluate(model, parts.train, parts.train.with_frame(test), k=K, protocol="sampled:20",
                         negatives=tfrec.evaluation.read_ncf_negatives(path))  # fmt: skip
    hits, ranks = [], []
    for user, item, negatives in cases:
        q = model.query_embedding(np.asarray([user], dtype=object)).numpy()[0]
        c = model.candidate_embedding(np.asarray([item, *negatives], dtype=object)).numpy()
        s = c @ q
        rank = 1 + int((s[1:] > s[0]).sum())  # distinct random scores: no ties
        hits.append(rank <= K)
        ranks.append(rank)
    assert got["hit_rate@5"] == pytest.approx(np.mean(hits), abs=1e-6)
    assert got["mrr"] == pytest.approx(np.mean([1 / r for r in ranks]), abs=1e-6)


def test_compare_gives_a_paired_bootstrap_interval_and_a_verdict(small) -> None:
    parts = tfrec.data.split(small, "leave-last-out", seed=0)
    model = tfrec.training.train("implicit_mf", parts.train, epochs=3, verbose=0).model
    popularity = tfrec.evaluation.Popularity(parts.train)
    same = tfrec.evaluation.compare(model, model, parts.train, parts.test)
    assert same["difference"] == same["low"] == same["high"] == 0.0 and same["verdict"] == "tie"
    result = tfrec.evaluation.compare(model, popularity, parts.train, parts.test, metric="ndcg@10", samples=500)
    metrics = tfrec.evaluate(model, parts.train, parts.test, k=10)
    assert result["a"] == pytest.approx(metrics["ndcg@10"]) and result["users"] == metrics["users"]
    assert result["low"] <= result["difference"] <= result["high"]
    flipped = tfrec.evaluation.compare(popularity, model, parts.train, parts.test, metric="ndcg@10", samples=500)
    assert flipped["difference"] == pytest.approx(-result["difference"])
    assert {result["verdict"], flipped["verdict"]} in ({"better", "worse"}, {"tie"})
    with pytest.raises(tfrec.TfrecError, match="metric must be one of"):
        tfrec.evaluation.compare(model, popularity, parts.train, parts.test, metric="auc")


def test_compare_on_rating_error_resamples_ratings_paired() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(1, 6, 4000).astype(float)
    close, far = y + rng.normal(0, 0.5, y.size), y + rng.normal(0, 1.0, y.size)
    result = tfrec.evaluation.error_difference(y, close, far, samples=500)
    assert result["a"] == pytest.approx(np.sqrt(np.mean((close - y) ** 2)))
    assert result["low"] <= result["difference"] <= result["high"] < 0 and result["verdict"] == "better"
    same = tfrec.evaluation.error_difference(y, close, close, metric="mae")
    assert same["low"] == same["high"] == 0.0 and same["verdict"] == "tie"
    noisy = close + rng.normal(0, 0.01, y.size)  # a difference inside the noise
    assert tfrec.evaluation.error_difference(y, close, noisy, samples=500)["verdict"] == "tie"
    with pytest.raises(tfrec.TfrecError, match="'rmse' or 'mae'"):
        tfrec.evaluation.error_difference(y, close, far, metric="auc")


def test_compare_rating_models_on_rmse(small) -> None:
    ratings_split = split(small, "random:0.2", seed=0)
    good = tfrec.training.train("biased_mf", ratings_split.train, epochs=5, verbose=0).model
    poor = tfrec.training.train("biased_mf", ratings_split.train, epochs=1, learning_rate=1e-5, verbose=0).model
    result = tfrec.evaluation.compare(good, poor, ratings_split.train, ratings_split.test, metric="rmse", samples=500)
    assert result["a"] == pytest.approx(tfrec.evaluate(good, ratings_split.train, ratings_split.test)["rmse"], rel=1e-5)
    assert result["ratings"] == len(ratings_split.test.frame) and result["verdict"] == "better"
    implicit = tfrec.training.train("implicit_mf", ratings_split.train, epochs=1, verbose=0).model
    with pytest.raises(tfrec.TfrecError, match="compares two rating models"):
        tfrec.evaluation.compare(good, implicit, ratings_split.train, ratings_split.test, metric="rmse")


def test_interval_bootstraps_one_model_over_users_or_ratings(small) -> None:
    parts = split(small, "leave-last-out", seed=0)
    model = tfrec.training.train("implicit_mf", parts.train, epochs=3, verbose=0).model
    metrics = tfrec.evaluate(model, parts.train, parts.test, k=10)
    got = tfrec.evaluation.interval(model, parts.train, parts.test, metric="ndcg@10", samples=500)
    assert got["value"] == pytest.approx(metrics["ndcg@10"]) and got["users"] == metrics["users"]
    assert got["low"] < got["value"] < got["high"]
    wider = tfrec.evaluation.interval(model, parts.train, parts.test, metric="ndcg@10", samples=500, level=0.99)
    assert wider["low"] <= got["low"] and wider["high"] >= got["high"]
    rated = split(small, "random:0.2", seed=0)
    rating_model = tfrec.training.train("biased_mf", rated.train, epochs=2, verbose=0).model
    error = tfrec.evaluation.interval(rating_model, rated.train, rated.test, metric="rmse", samples=500)
    assert error["value"] == pytest.approx(tfrec.evaluate(rating_model, rated.train, rated.test)["rmse"], rel=1e-5)
    assert error["low"] < error["value"] < error["high"] and error["ratings"] == len(rated.test.frame)
    with pytest.raises(tfrec.TfrecError, match="needs a rating model"):
        tfrec.evaluation.interval(model, parts.train, parts.test, metric="rmse")
    with pytest.raises(tfrec.TfrecError, match="metric must be one of"):
        tfrec.evaluation.interval(model, parts.train, parts.test, metric="auc")
