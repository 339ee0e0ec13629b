"""On generated data with a known answer, the models recover the planted preferences."""

from __future__ import annotations

import pytest

import tfrec
from tfrec.data import split
from tfrec.training import train


@pytest.fixture(scope="module")
def planted():
    data = tfrec.datasets.synthetic(seed=0)
    return split(data, "leave-last-out")


@pytest.fixture(scope="module")
def popularity(planted):
    return tfrec.evaluate(tfrec.evaluation.Popularity(planted.train), planted.train, planted.test, k=[10])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, overrides",
    [
        ("implicit_mf", {"epochs": 8}),
        ("implicit_mf", {"epochs": 8, "loss": "bpr"}),
        ("deep_mf", {"feedback": "implicit", "epochs": 8, "batch_size": 1024, "l2": 0.0}),
        ("gmf", {"epochs": 10, "batch_size": 512}),
        ("mlp", {"epochs": 4, "batch_size": 512}),
        ("neumf", {"epochs": 4, "batch_size": 512}),
        ("two_tower", {"epochs": 6}),
        ("ials", {"epochs": 8}),
    ],
    ids=[
        "implicit_mf-softmax",
        "implicit_mf-bpr",
        "deep_mf-implicit",
        "gmf",
        "mlp",
        "neumf",
        "two_tower",
        "ials",
    ],
)
def test_retrieval_models_beat_popularity_on_planted_data(planted, popularity, name, overrides) -> None:
    model = train(name, planted.train, verbose=0, **overrides).model
    metrics = tfrec.evaluate(model, planted.train, planted.test, k=[10])
    print(name, overrides, metrics["recall@10"], "popularity", popularity["recall@10"])
    assert metrics["recall@10"] > 1.5 * popularity["recall@10"]
    assert metrics["ndcg@10"] > 1.5 * popularity["ndcg@10"]


def test_deep_mf_explicit_beats_the_mean() -> None:
    data = tfrec.datasets.synthetic(seed=0)
    parts = split(data, "random:0.2")
    model = train("deep_mf", parts.train, verbose=0, epochs=4).model
    rmse = tfrec.evaluate(model, parts.train, parts.test)["rmse"]
    truth = parts.test.frame["rating"].to_numpy()
    baseline = tfrec.evaluation.rmse(truth, truth * 0 + parts.train.frame["rating"].mean())
    assert rmse < 0.85 * baseline
