"""The approximate (inverted-file) index an export can carry: recall against exact on
planted data, exclusions never returned, the exact fallback for exhausted rows, the
recall the metadata records being what the signature serves, and a fresh-process round trip."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.errors import TfrecError
from tfrec.serving import index as ivf
from tfrec.serving.module import ServingModule
from tfrec.training import train


def planted(n: int = 6000, clusters: int = 60, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 3
    return (centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def test_every_item_lands_in_one_row_and_probing_finds_the_exact_top() -> None:
    vectors = planted()
    built = ivf.build(vectors, seed=0)
    members = built.members[built.members > 0]
    assert sorted(members.tolist()) == list(range(1, len(vectors) + 1))  # each item once
    assert built.width == int(np.ceil(1.5 * len(vectors) / ivf.default_partitions(len(vectors))))
    again = ivf.build(vectors, seed=0)
    assert np.array_equal(built.members, again.members) and np.array_equal(built.centroids, again.centroids)
    queries = planted(200, seed=1)
    exact = np.argsort(-queries @ vectors.T, axis=1)[:, :10] + 1
    table = tf.constant(np.vstack([np.zeros((1, 16), np.float32), vectors]))
    recalls = {}
    for probes in (1, 8):
        best = ivf.probe(tf.constant(queries), tf.constant(built.centroids), probes)
        found = ivf.flat(tf.gather(tf.constant(built.members), best))
        scores = tf.where(found > 0, tf.einsum("bd,bmd->bm", queries, tf.gather(table, found)), -np.inf)
        top = tf.gather(found, tf.math.top_k(scores, 10).indices, batch_dims=1).numpy()
        recalls[probes] = ivf.recall_at(top, exact)
    assert recalls[8] >= 0.95 and recalls[8] > recalls[1], recalls


def test_excluded_matches_membership() -> None:
    candidates = tf.constant([[5, 3, 0, 9], [1, 2, 3, 4]], tf.int64)
    exclude = tf.constant([[9, 0, 3], [0, 0, 0]], tf.int64)
    assert ivf.excluded(candidates, exclude).numpy().tolist() == [[False, True, False, True], [False] * 4]
    assert not ivf.excluded(candidates, tf.zeros([2, 0], tf.int64)).numpy().any()


@pytest.fixture(scope="module")
def catalogue_model():
    data = tfrec.datasets.synthetic(num_users=300, num_items=4000, num_interactions=12_000, seed=3)
    return train("ials", data, seed=0, verbose=0).model


@pytest.fixture(scope="module")
def modules(catalogue_model):
    model = catalogue_model.for_serving()
    return ServingModule(model), ServingModule(model, index="approx", recall=0.9)


def _ids(module, signature: str, **inputs) -> np.ndarray:
    return getattr(module, signature)(**{k: tf.constant(v) for k, v in inputs.items()})["item_ids"].numpy().astype(str)


def test_the_index_serves_the_recall_it_records_and_never_an_excluded_item(catalogue_model, modules) -> None:
    exact, approx = modules
    report = approx.index_report
    assert report["kind"] == "approx" and report["recall@10"] >= 0.9
    assert report["items_scored_per_query"] < approx.num_items  # it scores a part of the catalogue
    users = list(catalogue_model.user_vocabulary)
    k = np.full(len(users), 10, np.int32)
    served, truth = _ids(approx, "recommend", user_id=users, k=k), _ids(exact, "recommend", user_id=users, k=k)
    assert abs(ivf.recall_at(served, truth) - report["recall@10"]) < 1e-6  # measured on every user here
    seen = catalogue_model.excluded_for(tf.constant(users))
    catalogue = np.asarray(catalogue_model.item_vocabulary)
    assert all(not set(row) & set(catalogue[left]) for row, left in zip(served, seen))
    rng = np.random.default_rng(0)
    exclude = rng.choice(catalogue, size=(len(users), approx.exclude_width)).astype(object)
    excluding = _ids(approx, "recommend_excluding", user_id=users, k=k, exclude_item_ids=exclude)
    assert all(not set(row) & set(drop) for row, drop in zip(excluding, exclude))
    similar = _ids(approx, "similar_items", item_id=catalogue[:50], k=np.full(50, 5, np.int32))
    assert all(item not in row for item, row in zip(catalogue[:50], similar))


def test_a_row_with_too_few_items_left_in_its_partitions_is_ranked_exactly(catalogue_model, modules) -> None:
    exact, approx = modules
    user = list(catalogue_model.user_vocabulary)[:1]
    query = approx.model.query_from_index(approx.model.user_index(tf.constant(user)))
    best = ivf.probe(query, approx.index_centroids, approx.index_probes)
    members = ivf.flat(tf.gather(approx.index_members, best)).numpy()[0]
    probed = np.asarray(catalogue_model.item_vocabulary)[members[members > 0] - 1]
    wide = ServingModule(approx.model, index="approx", recall=0.9, exclude_width=len(probed))
    assert wide.index_probes == approx.index_probes  # the same index (seeded)
    inputs = {"user_id": user, "k": np.array([10], np.int32), "exclude_item_ids": probed[None].astype(object)}
    assert not set(_ids(wide, "recommend_excluding", **inputs)[0]) & set(probed)
    wide_exact = ServingModule(exact.model, exclude_width=len(probed))
    assert _ids(wide, "recommend_excluding", **inputs).tolist() == _ids(wide_exact, "recommend_excluding", **inputs).tolist()


def test_the_index_compiles_with_xla_and_refuses_models_that_do_not_score_by_dot_product(modules, small) -> None:
    exact, approx = modules
    compiled = ServingModule(approx.model, index="approx", recall=0.9, xla=True)
    users = list(approx.model.user_vocabulary)[:5]
    k = np.full(5, 10, np.int32)
    # A batch with an exhausted row is ranked exactly as a whole under XLA (static shapes).
    rows = zip(*(_ids(m, "recommend", user_id=users, k=k).tolist() for m in (compiled, approx, exact)))
    assert all(got in (approximate, whole) for got, approximate, whole in rows)
    gmf = train("gmf", small, seed=0, verbose=0, epochs=1).model
    with pytest.raises(TfrecError, match="index='approx' needs a dot-product model"):
        ServingModule(gmf.for_serving(), index="approx")


def test_an_approximate_export_loads_in_a_fresh_process_and_records_its_index(
    catalogue_model, modules, tmp_path, monkeypatch, capsys
) -> None:
    """`tfrec export MODEL --index approx --recall 0.9`, validated in a fresh process."""
    from tfrec.cli import main

    monkeypatch.chdir(tmp_path)
    catalogue_model.save("model.keras")
    assert main(["export", "model.keras", "--export-dir", "exports/ials", "--index", "approx", "--recall", "1.5"]) == 2
    assert "argument --recall: must be a number in (0, 1], got 1.5" in capsys.readouterr().err
    assert main(["export", "model.keras", "--export-dir", "exports/ials", "--index", "approx", "--recall", "0.9"]) == 0
    said = capsys.readouterr().out
    assert re.search(r"approximate index: \d+ of \d+ partitions probed \(\d+ items scored a query\), recall@10 "
                     r"[\d.]+ against exact on 300 users \(target 0.9\)", said), said  # fmt: skip
    path = tmp_path / "exports" / "ials" / "1"
    metadata = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())
    assert metadata["index"]["kind"] == "approx" and metadata["index"]["recall@10"] >= 0.9
    served = tfrec.serving.ExportedModel(path)  # the trust check passes: only allowed ops
    users = list(catalogue_model.user_vocabulary)[:8]
    answer = served.run("recommend", user_id=users, k=[10] * 8)["item_ids"].astype(str)
    served.close()
    assert answer.tolist() == _ids(modules[1], "recommend", user_id=users, k=np.full(8, 10, np.int32)).tolist()
    with pytest.raises(TfrecError, match="index must be one of exact, approx"):
        tfrec.export(catalogue_model, tmp_path / "x", index="ivf")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sasrec", "two_tower"])
def test_approximate_exports_pass_the_stock_server_checks(name, small, tmp_path) -> None:
    """The checks every exact export passes (every warmup record replayed in a fresh process
    with XLA disabled, batching rules, finite answers), on approximate exports of a history
    model (recommend_from_history through the index) and a computed catalogue."""
    settings = {"history_length": 10} if name == "two_tower" else {}
    model = train(name, small, seed=0, verbose=0, epochs=1, **settings).model
    path = tfrec.export(model, tmp_path / name, index="approx", recall=0.9)  # raises on any failed check
    metadata = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())
    assert metadata["index"]["kind"] == "approx" and "recommend_from_history" in metadata["signatures"]
    with pytest.raises(TfrecError, match="index must be one of exact, approx"):
        ServingModule(model.for_serving(), index="approximate")
