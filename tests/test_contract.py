"""The contract every registered model meets: one small test per behaviour, run for every
model over one tiny fit per model, and a correctness oracle every model must pass."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.data import split
from tfrec.training import train

NAMES = tfrec.models.names()


@pytest.fixture(scope="module")
def parts(small):
    return split(small, "random:0.2", seed=0)


@pytest.fixture(scope="module", params=NAMES)
def fitted(request, parts):
    """``(name, model)`` after one epoch of the default recipe."""
    result = train(request.param, parts.train, epochs=1, batch_size=256, verbose=0)
    assert np.isfinite(result.history["loss"]).all()
    return request.param, result.model


@pytest.fixture(scope="module")
def pairs(parts):
    frame = parts.test.frame
    return frame["user_id"].to_numpy()[:50], frame["item_id"].to_numpy()[:50]


class TestModelContract:
    def test_scores_are_finite_float32(self, fitted, pairs) -> None:
        _, model = fitted
        scores = model.score(*pairs)
        assert scores.shape == (50,) and scores.dtype == np.float32 and np.isfinite(scores).all()

    def test_recommend_ranks_known_unseen_items_best_first(self, fitted, pairs, parts) -> None:
        _, model = fitted
        users = pairs[0][:3]
        ids, top = model.recommend(users, k=5)
        assert ids.shape == (3, 5) and top.shape == (3, 5)
        assert (np.diff(top, axis=1) <= 1e-6).all()
        assert set(ids.ravel()) <= set(parts.train.item_ids)
        seen = parts.train.frame.groupby("user_id")["item_id"].agg(set)
        assert all(not set(row) & seen.get(user, set()) for user, row in zip(users, ids))

    def test_an_approximate_index_at_full_recall_serves_the_exact_answer(self, fitted) -> None:
        """``index="approx"`` asked for recall 1.0 probes until it matches exact on every
        user here, through each model's own scoring path; a non-dot-product model is refused."""
        from tfrec.models.scoring import Scorer
        from tfrec.serving.module import ServingModule

        name, model = fitted
        serving = model.for_serving()
        if type(model).score_all is not Scorer.score_all:
            with pytest.raises(tfrec.errors.TfrecError, match="needs a dot-product model"):
                ServingModule(serving, index="approx")
            return
        approx, exact = ServingModule(serving, index="approx", recall=1.0), ServingModule(serving)
        assert approx.index_report["recall@10"] == 1.0, approx.index_report
        users = tf.constant(list(model.user_vocabulary)[:20])
        k = tf.constant([10] * 20, tf.int32)
        got, want = (m.recommend(users, k)["item_ids"].numpy() for m in (approx, exact))
        assert [set(row) for row in got] == [set(row) for row in want]

    def test_score_recommend_and_similar_items_agree(self, fitted, pairs) -> None:
        _, model = fitted
        users = pairs[0][:3]
        ids, top = model.recommend(users, k=4)
        again = model.score(np.repeat(users, 4), ids.ravel()).reshape(3, 4)
        np.testing.assert_allclose(again, top, rtol=1e-4, atol=1e-5)
        item = pairs[1][0]
        neighbours, cosine = model.similar_items([item], k=3)
        vectors = model.candidate_embedding(tf.constant([item, *neighbours[0]])).numpy()
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        np.testing.assert_allclose(unit[1:] @ unit[0], cosine[0], rtol=1e-4, atol=1e-5)
        assert item not in neighbours[0]

    def test_unknown_ids_score_through_the_oov_bucket(self, fitted, pairs) -> None:
        _, model = fitted
        assert np.isfinite(model.score(["no-such-user", ""], ["no-such-item", pairs[1][0]])).all()
        ids, _ = model.recommend(["no-such-user"], k=2)
        assert ids.shape == (1, 2) and "" not in ids

    def test_config_survives_json(self, fitted) -> None:
        _, model = fitted
        text = json.dumps(model.get_config(), sort_keys=True)
        clone = type(model).from_config(json.loads(text))
        assert json.dumps(clone.get_config(), sort_keys=True) == text

    def test_save_and_load_give_the_same_outputs(self, fitted, pairs, tmp_path) -> None:
        name, model = fitted
        model.save(tmp_path / f"{name}.keras")
        loaded = tfrec.models.load(tmp_path / f"{name}.keras")
        assert type(loaded) is type(model)
        np.testing.assert_allclose(loaded.score(*pairs), model.score(*pairs), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(loaded.recommend(pairs[0][:3], k=5)[0], model.recommend(pairs[0][:3], k=5)[0])

    def test_serving_module_answers_as_the_model(self, fitted, pairs) -> None:
        _, model = fitted
        module = tfrec.serving.ServingModule(model)
        users = pairs[0][:3]
        got = module.recommend(tf.constant(users), tf.fill([len(users)], 5))
        ids, scores = model.recommend(users, k=5)
        np.testing.assert_array_equal(got["item_ids"].numpy().astype(str), ids)
        np.testing.assert_allclose(got["scores"].numpy(), scores, rtol=1e-5, atol=1e-5)
        served = module.score(tf.constant(pairs[0]), tf.constant(pairs[1]))["score"].numpy()
        np.testing.assert_allclose(served, model.score(*pairs), rtol=1e-5, atol=1e-5)

    def test_the_export_holds_only_what_its_signatures_read(self, fitted) -> None:
        _, model = fitted
        module = tfrec.serving.ServingModule(model.for_serving())
        read = {id(v): v for function in module.signatures().values() for v in function.graph.variables}
        held = {id(v): v for v in module.variables}

        def size(variables) -> int:
            return sum(int(np.prod(tuple(v.value().shape))) * v.dtype.size for v in variables)

        # Within 10%, plus fixed-size training state: ials' d x d Gramian (64 KiB at its
        # default d = 128) and metric counters.
        gramian = [v for k, v in held.items() if k not in read and v.name.startswith("gramian")]
        assert size(held.values()) - size(gramian) <= 1.1 * size(read.values()) + 20_000, [
            v.name for k, v in held.items() if k not in read
        ]
        assert all(len(v.shape) == 2 and v.shape[0] == v.shape[1] == model.config.embedding_dim for v in gramian)
        assert not [v for v in held.values() if "optimizer" in v.name.lower()]
        # The catalogue is held once: a model ranked against its own tables adds none; any
        # other adds its candidate embeddings once (cosine divides by a norm per item).
        own = [v for v in module.variables if not any(v is m for m in module.model.variables)]
        tables = [v.name for v in own if v.shape.rank == 2]
        assert tables == ([] if model.catalogue_parts() else ["candidates:0"]), tables

    def test_catalogue_parts_are_the_candidate_embeddings(self, fitted) -> None:
        _, model = fitted
        parts = model.catalogue_parts()
        if parts is None:
            pytest.skip(f"{model.registry_name} computes its catalogue (its candidate tower is not a table)")
        rows = len(model.item_vocabulary) + 1
        joined = np.concatenate([np.broadcast_to(p.numpy(), (rows, p.shape[1])) for p in parts], axis=1)
        np.testing.assert_allclose(joined[1:], model.catalogue_embeddings().numpy(), rtol=1e-6, atol=1e-6)

    def test_export_metadata_holds_no_ids_or_texts(self, fitted, parts) -> None:
        _, model = fitted
        text = json.dumps(model.export_config())
        assert len(text) < 4000
        assert not any(f'"{user}"' in text for user in list(model.user_vocabulary)[:20])


@pytest.mark.parametrize("name", NAMES)
def test_defaults_live_in_the_config_alone(name, parts) -> None:
    built = tfrec.models.build(name, parts.train)
    direct = tfrec.models.entry(name).model_cls.from_data(parts.train)
    defaults = dataclasses.asdict(tfrec.models.entry(name).config_cls())
    assert built.config == direct.config == tfrec.models.entry(name).config_cls()
    assert built.get_config()["config"] == direct.get_config()["config"]
    assert set(built.get_config()["config"]) == set(defaults)
    assert type(built).registry_name == name and built.task == tfrec.models.entry(name).task


# === The oracle: block-structured data whose answer is known ===
GROUPS, PER_GROUP = 4, 8


def block_data(explicit: bool, seed: int = 0) -> tuple[tfrec.data.Interactions, pd.DataFrame]:
    """Users and items in ``GROUPS`` groups; a user likes every item of their group.

    Each user's training rows are their group's items but one (the withheld item, in the
    returned test frame) and, with ``explicit``, low ratings of items of other groups.
    Items carry a text naming their group, so content models can see the structure too.
    """
    rng = np.random.default_rng(seed)
    rows, test = [], []
    for g in range(GROUPS):
        items = [f"i{g}_{j}" for j in range(PER_GROUP)]
        others = [f"i{h}_{j}" for h in range(GROUPS) if h != g for j in range(PER_GROUP)]
        for u in range(PER_GROUP):
            user = f"u{g}_{u}"
            withheld = items[u]
            rows += [(user, item, 5.0) for item in items if item != withheld]
            test.append((user, withheld, 5.0))
            if explicit:
                disliked = rng.choice(others, size=9, replace=False)
                rows += [(user, item, 1.0) for item in disliked[:8]]
                test.append((user, disliked[8], 1.0))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    # Each user's items in a random order: a group item follows a group item (sequence models).
    frame["timestamp"] = rng.permutation(len(frame))
    if not explicit:
        frame = frame.drop(columns="rating")
    texts = pd.DataFrame(
        {"text": [f"topic{g} theme{g} item{g}x{j}" for g in range(GROUPS) for j in range(PER_GROUP)]},
        index=pd.Index([f"i{g}_{j}" for g in range(GROUPS) for j in range(PER_GROUP)], name="item_id"),
    )
    return tfrec.data.Interactions(frame, items=texts, name="blocks"), pd.DataFrame(
        test, columns=["user_id", "item_id", "rating"]
    )


# Settings that let each model converge on the oracle's ~250 rows (the defaults are for real data).
ORACLE_SETTINGS = {
    "bayesian_mf": {"epochs": 60, "burn_in": 20, "embedding_dim": 8, "average_rank": 8, "batch_size": 512},
    "ials": {"epochs": 10, "embedding_dim": 8},
    "neumf": {"epochs": 30, "batch_size": 64},
    "mlp": {"epochs": 30, "batch_size": 32, "learning_rate": 5e-3},
}
DEFAULT_ORACLE = {"epochs": 30, "batch_size": 32}


def biases_only_rmse(train_frame: pd.DataFrame, test: pd.DataFrame) -> float:
    """RMSE of ``mu + b_u + b_i`` fitted by ridge least squares (the interaction-free baseline)."""
    users = sorted(set(train_frame["user_id"])); items = sorted(set(train_frame["item_id"]))  # noqa: E702
    u_index, i_index = {u: k for k, u in enumerate(users)}, {i: k for k, i in enumerate(items)}

    def design(frame):
        x = np.zeros((len(frame), len(users) + len(items)))
        x[np.arange(len(frame)), frame["user_id"].map(u_index).to_numpy()] = 1
        x[np.arange(len(frame)), len(users) + frame["item_id"].map(i_index).to_numpy()] = 1
        return x

    mu = train_frame["rating"].mean()
    x = design(train_frame)
    w = np.linalg.solve(x.T @ x + 0.1 * np.eye(x.shape[1]), x.T @ (train_frame["rating"].to_numpy() - mu))
    predicted = mu + design(test) @ w
    return float(np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2)))


@pytest.mark.parametrize("name", NAMES)
def test_oracle_withheld_item_ranks_first(name) -> None:
    explicit = tfrec.models.entry(name).task == "rating"
    data, test = block_data(explicit)
    settings = {**DEFAULT_ORACLE, **ORACLE_SETTINGS.get(name, {})}
    model = train(name, data, seed=0, verbose=0, **settings).model
    liked = test[test["rating"] == 5.0]
    ids, _ = model.recommend(liked["user_id"].to_numpy(), k=1)
    first = float(np.mean(ids[:, 0] == liked["item_id"].to_numpy()))
    assert first >= 0.9, f"{name}: the withheld item ranked first for {first:.0%} of users"
    if explicit:
        rmse = float(np.sqrt(np.mean((model.score(test["user_id"], test["item_id"]) - test["rating"]) ** 2)))
        baseline = biases_only_rmse(data.frame, test)
        assert rmse < 0.7 * baseline, f"{name}: RMSE {rmse:.3f} vs biases-only {baseline:.3f}"


def test_recommend_excludes_and_checks_k(parts) -> None:
    model = tfrec.models.build("biased_mf", parts.train)
    user = parts.train.frame["user_id"].iloc[0]
    ids, _ = model.recommend([user], k=10)
    again, _ = model.recommend([user], k=10, exclude=[list(ids[0, :3])])
    assert not set(ids[0, :3]) & set(again[0]) and list(again[0, :7]) == list(ids[0, 3:])
    for bad in (0, -1, len(model.item_vocabulary) + 1, 2.5):
        with pytest.raises(tfrec.TfrecError, match="k must be an integer in"):
            model.recommend([user], k=bad)


def test_build_rejects_unknown_names_fields_and_values(parts) -> None:
    with pytest.raises(tfrec.TfrecError, match=r"unknown model 'svd'; registered models: \["):
        tfrec.models.build("svd", parts.train)
    with pytest.raises(tfrec.TfrecError, match=r"unknown config field\(s\) \['dim'\]; allowed: \["):
        tfrec.models.build("biased_mf", parts.train, dim=3)
    with pytest.raises(tfrec.TfrecError, match="embedding_dim=0 is invalid: must be a positive integer"):
        tfrec.models.build("biased_mf", parts.train, embedding_dim=0)
    with pytest.raises(tfrec.TfrecError, match="embedding_dim='x' is not a valid int"):
        tfrec.models.build("biased_mf", parts.train, embedding_dim="x")


@pytest.mark.parametrize(
    "name, field, value, allowed",
    [
        ("implicit_mf", "loss", "hinge", "one of ['softmax', 'bpr']"),
        ("implicit_mf", "temperature", 0, "a number > 0"),
        ("deep_mf", "feedback", "both", "one of ['explicit', 'implicit']"),
        ("deep_mf", "dropout", 1.0, "a number in [0, 1)"),
        ("deep_mf", "hidden_units", (64, 0), "positive integers"),
        ("biased_mf", "epochs", 0, "a positive integer"),
        ("gmf", "num_negatives", 0, "a positive integer"),
        ("gmf", "sampler", "hard", "one of ['uniform', 'popularity']"),
        ("mlp", "mlp_layers", (7, 3), "positive integers, the first even"),
        ("neumf", "pretrain_alpha", 2, "a number in [0, 1]"),
        ("two_tower", "extra_negatives", -1, "an integer >= 0"),
        ("two_tower", "item_features", ("",), "column names"),
        ("hybrid", "id_dropout", 1.0, "a number in [0, 1)"),
    ],
)
def test_config_values_are_checked(name, field, value, allowed) -> None:
    with pytest.raises(tfrec.TfrecError, match=re.escape(f"{field}={value!r} is invalid: must be {allowed}")):
        tfrec.models.make_config(name, **{field: value})


def test_cli_style_strings_are_coerced() -> None:
    config = tfrec.models.make_config("deep_mf", hidden_units="32,16", logq_correction="false", dropout="0.1")
    assert config.hidden_units == (32, 16) and config.logq_correction is False and config.dropout == 0.1


def test_a_model_needs_its_data() -> None:
    with pytest.raises(TypeError, match="needs its ModelData"):
        tfrec.models.BiasedMF()


def test_a_config_from_before_the_composed_shape_is_refused_clearly(parts) -> None:
    old = {"user_vocabulary": ["u1"], "item_vocabulary": ["i1"], "embedding_dim": 8, "name": "biased_mf"}
    with pytest.raises(tfrec.TfrecError, match="saved by an earlier tfrec .* train and save it again"):
        tfrec.models.BiasedMF.from_config(old)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_model_exports_for_a_stock_server(name, parts, tmp_path) -> None:
    """The default export validates in a fresh process that disables XLA as a stock
    ``tensorflow_model_server`` does (every warmup record replayed, batching rules and
    finite outputs checked), holds no must-compile function, no large constant and no
    training state, and answers as the model does."""
    from tensorflow.core.protobuf import saved_model_pb2

    model = train(name, parts.train, epochs=1, batch_size=256, verbose=0).model
    path = tfrec.export(model, tmp_path / name)  # validated: raises on any problem
    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes()).meta_graphs[0]
    functions = saved.graph_def.library.function
    assert not [f.signature.name for f in functions if f.attr["_XlaMustCompile"].b]
    aliases = dict(saved.meta_info_def.function_aliases)
    narrow = {"tfrec_recommend_top_narrow"} if len(model.item_vocabulary) > 10 else set()
    assert set(aliases.values()) == {"tfrec_recommend_top", "tfrec_similar_top", *narrow}
    # No numbers baked into the graph (a corpus or table as a constant would hit protobuf's
    # 2 GB cap); string constants are the id lookups' vocabularies (see ARCHITECTURE.md).
    nodes = [*saved.graph_def.node, *(n for f in functions for n in f.node_def)]
    constants = [n.attr["value"].tensor for n in nodes if n.op == "Const"]
    numeric = [c for c in constants if c.dtype != tf.string.as_datatype_enum]
    assert max(len(c.SerializeToString()) for c in numeric) < 4096
    variables = tf.train.load_checkpoint(str(path / "variables" / "variables")).get_variable_to_shape_map()
    assert not [v for v in variables if "optimizer" in v]
    sampler_state = [shape for v, shape in variables.items() if "/gram/" in v or "rating_pattern" in v]
    assert all(shape[0] <= 1 for shape in sampler_state)  # bayesian_mf: one row, not one per user
    metadata = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())
    assert len(json.dumps(metadata)) < 12000 and metadata["max_k"] == min(100, len(model.item_vocabulary))
    assert metadata["xla"] is False and metadata["server_flags"] == []
    assert metadata["catalogue_items"] == len(model.item_vocabulary)
    served = tfrec.serving.ExportedModel(path)
    try:
        assert {k: sorted(v["inputs"]) for k, v in metadata["signatures"].items()} == {
            k: v["inputs"] for k, v in served.describe().items()
        }
        assert all(spec["shape"].startswith("[B") for s in metadata["signatures"].values() for spec in s["inputs"].values())
        users = parts.test.frame["user_id"].to_numpy()[:3]
        for k in (5, 30):  # the narrow core (k <= 10) and the max_k one
            got = served.run("recommend", user_id=users, k=k)
            ids, scores = model.recommend(users, k=k)
            np.testing.assert_array_equal(got["item_ids"].astype(str), ids)
            np.testing.assert_allclose(got["scores"], scores, rtol=1e-5, atol=1e-5)
    finally:
        served.close()
