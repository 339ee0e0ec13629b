"""Export to TF Serving's layout: atomic versions, signatures, warmup, validation, XLA core."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tfrec
from tfrec._keras import tf
from tfrec.core import chunks
from tfrec.data import split
from tfrec.serving import ExportError, ServingModule
from tfrec.serving import exporter as export_module
from tfrec.training import train


@pytest.fixture(scope="module")
def trained(small):
    parts = split(small, "random:0.2", seed=0)
    return {
        "two_tower": train("two_tower", parts.train, epochs=1, verbose=0).model,
        "neumf": train("neumf", parts.train, epochs=1, verbose=0).model,
    }


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    base = tmp_path_factory.mktemp("exports") / "two_tower"
    # The README's REST examples are written for an export with --exclude-width 4.
    return tfrec.export(trained["two_tower"], base, metrics={"recall@10": 0.5}, exclude_width=4)


def test_layout_metadata_and_signatures(exported, trained) -> None:
    model = trained["two_tower"]
    assert exported.name == "1" and (exported / "saved_model.pb").is_file()
    meta = json.loads((exported / "assets.extra" / "tfrec_metadata.json").read_text())
    assert meta["model"] == "two_tower" and meta["task"] == "retrieval"
    assert meta["vocabulary_sizes"] == {
        "users": len(model.user_vocabulary),
        "items": len(model.item_vocabulary),
    }
    assert meta["metrics"] == {"recall@10": 0.5} and meta["versions"]["tensorflow"] == tf.__version__
    assert meta["exclude_width"] == 4
    served = tfrec.serving.ExportedModel(exported)
    assert served.describe() == {
        "serving_default": {"inputs": ["user_id"], "outputs": ["item_ids", "scores"]},
        "recommend": {"inputs": ["k", "user_id"], "outputs": ["item_ids", "scores"]},
        "recommend_excluding": {
            "inputs": ["exclude_item_ids", "k", "user_id"],
            "outputs": ["item_ids", "scores"],
        },
        "recommend_including_seen": {"inputs": ["k", "user_id"], "outputs": ["item_ids", "scores"]},
        "score": {"inputs": ["item_id", "user_id"], "outputs": ["score"]},
        "known_users": {"inputs": ["user_id"], "outputs": ["known"]},
        "query_embedding": {"inputs": ["user_id"], "outputs": ["embedding"]},
        "item_embedding": {"inputs": ["item_id"], "outputs": ["embedding"]},
        "similar_items": {"inputs": ["item_id", "k"], "outputs": ["item_ids", "scores"]},
    }
    assert {s.method_name for s in served.signatures.values()} == {"tensorflow/serving/predict"}
    served.close()


def test_an_export_is_callable_like_a_tfrs_index_and_says_who_is_known(exported, trained) -> None:
    """``scores, item_ids = loaded(["42"])``, as code written for TFRS's BruteForce export
    calls it: ``recommend`` at the default k; ``known_users`` flags the unknown user."""
    model = trained["two_tower"]
    users = [model.user_vocabulary[0], "never-seen"]
    loaded = tf.saved_model.load(str(exported))
    scores, item_ids = loaded(users)
    served = tfrec.serving.ExportedModel(exported)
    expected = served.run("serving_default", user_id=users)
    np.testing.assert_array_equal(item_ids.numpy().astype(str), expected["item_ids"])
    np.testing.assert_allclose(scores.numpy(), expected["scores"], rtol=1e-6)
    assert served.run("known_users", user_id=users)["known"].tolist() == [1, 0]
    served.close()


def test_signatures_answer_like_the_model_including_unknown_ids_and_edge_k(exported, trained) -> None:
    model = trained["two_tower"]
    served = tfrec.serving.ExportedModel(exported)
    users = [model.user_vocabulary[0], "never-seen", ""]
    items = [model.item_vocabulary[3], "never-seen", ""]
    np.testing.assert_allclose(
        served.run("score", user_id=users, item_id=items)["score"],
        model.score(users, items),
        rtol=1e-5,
        atol=1e-6,
    )
    catalogue = len(model.item_vocabulary)
    # The client refuses a k the export cannot answer; a server caps it at max_k.
    with pytest.raises(tfrec.TfrecError, match=r"k=170 is more than this export answers \(100, its max_k\)"):
        served.run("recommend", user_id=users, k=catalogue + 50)
    loaded = tf.saved_model.load(str(exported))
    capped = loaded.signatures["recommend"](user_id=tf.constant(users), k=tf.constant([catalogue + 50] * 3))
    assert capped["item_ids"].shape == (3, min(100, catalogue))
    empty = served.run("recommend", user_id=np.asarray([], dtype=object), k=3)
    assert empty["item_ids"].shape == (0, 1)  # no row asks for more than one
    # Every score is finite (JSON-safe): past the items left, rows end in "" scored the
    # lowest float32.
    seen = served.run("recommend", user_id=users[:1], k=100)
    assert np.isfinite(seen["scores"]).all() and (seen["item_ids"][0] == "").any()
    assert (seen["scores"][0][seen["item_ids"][0] == ""] == np.finfo(np.float32).min).all()
    top = model.recommend(users[:1], k=4)[0][0]
    excluded = served.run(
        "recommend_excluding", user_id=users[:1], k=2, exclude_item_ids=[[top[0], top[1], "", ""]]
    )
    assert list(excluded["item_ids"][0].astype(str)) == list(top[2:4])
    # The exclusion width is fixed at export, so batched requests always share one shape.
    assert served.input_shape("recommend_excluding", "exclude_item_ids") == [None, 4]
    with pytest.raises(tfrec.TfrecError, match=r"exclude_item_ids must have shape \[B, 4\], got \[1, 2\]"):
        served.run("recommend_excluding", user_id=users[:1], k=2, exclude_item_ids=[[top[0], ""]])
    neighbours = served.run("similar_items", item_id=items[:1], k=3)["item_ids"].astype(str)
    np.testing.assert_array_equal(neighbours, model.similar_items(items[:1], k=3)[0])
    embedding = served.run("query_embedding", user_id=users)["embedding"]
    assert embedding.shape == (3, model.query_tower.output_dim) and not embedding[1:].any()
    with pytest.raises(tfrec.TfrecError, match="k must be >= 1"):
        served.run("recommend", user_id=users, k=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be >= 1"):  # what a server answers
        loaded.signatures["recommend"](user_id=tf.constant(users), k=tf.constant([1, 0, 2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="k needs one value per row"):
        loaded.signatures["recommend"](user_id=tf.constant(users), k=tf.constant([1]))
    served.close()


def test_a_large_catalogue_export_uses_only_the_trusted_ops(tmp_path) -> None:
    """Past 65,536 items the cores take the grouped top-k (other ops than small catalogues)."""
    items = 70_000
    data = tfrec.data.ModelData(users=["u1", "u2"], items=[f"i{j}" for j in range(items)], item_counts=[1] * items)
    model = tfrec.models.ImplicitMF(tfrec.models.ImplicitMFConfig(embedding_dim=4), data)
    for xla in (False, True):
        path = tfrec.export(model, tmp_path / "big", validate=False, xla=xla, max_k=20)
        assert tfrec.serving.check_trusted(path)["catalogue_items"] == items


@pytest.mark.parametrize("name", ["two_tower", "neumf"])
def test_every_catalogue_item_can_be_returned(trained, name) -> None:
    model = trained[name]
    catalogue = len(model.item_vocabulary)
    module = ServingModule(model, max_k=catalogue)
    assert module.num_items == module.max_k == catalogue
    found = module.recommend_including_seen(tf.constant(["u1"]), tf.constant([catalogue]))["item_ids"].numpy()
    assert sorted(found[0].astype(str)) == sorted(model.item_vocabulary)


def test_versions_are_never_overwritten_unless_asked(exported, trained) -> None:
    base = exported.parent
    second = tfrec.export(trained["two_tower"], base, validate=False)
    assert second.name == "2" and tfrec.serving.versions(base) == [1, 2]
    stamp = (exported / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ExportError, match="1 already exists; pass overwrite=True"):
        tfrec.export(trained["two_tower"], base, version=1)
    assert (exported / "saved_model.pb").stat().st_mtime_ns == stamp
    replaced = tfrec.export(trained["two_tower"], base, version=2, overwrite=True, validate=False)
    assert replaced == second and sorted(p.name for p in base.iterdir()) == ["1", "2"]


def test_a_failed_validation_leaves_no_partial_version(trained, tmp_path, monkeypatch) -> None:
    def fail(path, expected, timeout=600, scratch_parent=None):
        raise ExportError("validation failed: simulated mismatch")

    monkeypatch.setattr(export_module, "run_checker", fail)
    with pytest.raises(ExportError, match="simulated mismatch"):
        tfrec.export(trained["two_tower"], tmp_path / "m")
    assert list((tmp_path / "m").iterdir()) == []


def test_validation_reports_a_mismatch_through_the_serving_path(exported, tmp_path) -> None:
    import shutil

    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    copy = tmp_path / "1"
    shutil.copytree(exported, copy)
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name="score"))
    request.inputs["user_id"].CopyFrom(tf.make_tensor_proto(np.asarray(["a"], dtype=object)))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    with tf.io.TFRecordWriter(str(copy / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    with pytest.raises(ExportError, match="a warmup request does not run in process"):
        tfrec.serving.validate(copy)
    assert tfrec.serving.validate(exported)["requests"] == len(tfrec.serving.warmup.read_warmup(exported))
    # The fresh-process checker compares values: a wrong expectation fails it.
    expected = export_module.expected_outputs(exported)
    tampered = {k: v + 1 if k.endswith("/scores") else v for k, v in expected.items()}
    with pytest.raises(ExportError, match=r"output 'scores': values differ"):
        export_module.run_checker(exported, tampered)


@pytest.mark.parametrize("name", ["two_tower", "neumf"])
def test_numeric_core_compiles_with_xla_and_agrees(trained, name) -> None:
    module = ServingModule(trained[name])
    users = tf.constant([1, 2, 0, 5], tf.int64)
    exclude = tf.constant([[3, 0], [0, 0], [1, 2], [4, 4]], tf.int64)
    eager = module.recommend_core(users, exclude, 7)
    compiled = tf.function(lambda u, e: module.recommend_core(u, e, 7), jit_compile=True)(users, exclude)
    np.testing.assert_allclose(compiled[0].numpy(), eager[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(compiled[1].numpy(), eager[1].numpy())
    items = tf.constant([1, 9, 0], tf.int64)
    eager = module.similar_core(items, 4)
    compiled = tf.function(lambda i: module.similar_core(i, 4), jit_compile=True)(items)
    np.testing.assert_allclose(compiled[0].numpy(), eager[0].numpy(), rtol=1e-5, atol=1e-6)


def test_readme_rest_examples_feed_the_real_signatures(exported) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    bodies = [
        json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", readme, re.S) if "signature_name" in b
    ]
    served = tfrec.serving.ExportedModel(exported)
    assert {b["signature_name"] for b in bodies} == set(served.signatures)
    for body in bodies:
        spec = served.signatures[body["signature_name"]]
        assert set(body["inputs"]) == set(spec.inputs), body
        # A body a batching server accepts: every input one value per row.
        assert all(isinstance(v, list) for v in body["inputs"].values()), body
        assert len({len(v) for v in body["inputs"].values()}) == 1, body
        outputs = served.run(body["signature_name"], **body["inputs"])
        assert set(outputs) == set(spec.outputs)
    assert '{"outputs": {"item_ids": [[' in readme
    served.close()


@pytest.mark.parametrize("name", ["two_tower", "neumf"])
def test_large_requests_are_ranked_in_chunks_with_the_same_answer(trained, name, monkeypatch) -> None:
    model = trained[name]
    whole = ServingModule(model, exclude_width=2)
    monkeypatch.setattr(chunks, "SCORES_PER_CHUNK", 4 * len(model.item_vocabulary))
    chunked = ServingModule(model, exclude_width=2)
    assert (whole.rows_per_chunk, chunked.rows_per_chunk) == (256, 4)
    users = tf.constant([*list(model.user_vocabulary[:9]), "unknown-user"])  # 10 users: chunks 4, 4, 2
    exclude = tf.constant([[model.item_vocabulary[j % 5], ""] for j in range(10)])
    items = tf.constant([*list(model.item_vocabulary[:6]), "unknown-item"])
    for module_answer in (
        lambda m: m.recommend_excluding(users, tf.fill([10], 6), exclude),
        lambda m: m.recommend(users[:3], tf.fill([3], 6)),  # fewer users than a chunk
        lambda m: m.similar_items(items, tf.fill([7], 5)),
    ):
        want, got = module_answer(whole), module_answer(chunked)
        np.testing.assert_array_equal(got["item_ids"].numpy(), want["item_ids"].numpy())
        np.testing.assert_allclose(got["scores"].numpy(), want["scores"].numpy(), rtol=1e-5, atol=1e-6)
    assert got["item_ids"].shape == (7, 5)


def test_every_signature_batches_the_way_tf_serving_batches(exported) -> None:
    """TF Serving's batching merges concurrent requests along dimension 0 and runs the
    signature once (tf.nondifferentiable_batch_function, the op the server uses): each
    request must get what it gets alone (rows padded past their own k with "")."""
    import threading

    loaded = tf.saved_model.load(str(exported))
    cases = {
        "recommend": [{"user_id": ["u1", "u2"], "k": [3, 5]}, {"user_id": ["nobody"], "k": [2]}],
        "recommend_including_seen": [{"user_id": ["u1"], "k": [4]}, {"user_id": ["u3", "u4"], "k": [1, 2]}],
        "recommend_excluding": [
            {"user_id": ["u1"], "k": [3], "exclude_item_ids": [["i1", "", "", ""]]},
            {"user_id": ["u2"], "k": [2], "exclude_item_ids": [["i2", "i3", "", ""]]},
        ],
        "similar_items": [{"item_id": ["i1", "i2"], "k": [2, 3]}, {"item_id": ["nothing"], "k": [1]}],
        "score": [{"user_id": ["u1"], "item_id": ["i1"]}, {"user_id": ["u2", "x"], "item_id": ["i5", "i6"]}],
        "query_embedding": [{"user_id": ["u1"]}, {"user_id": ["u2", ""]}],
    }
    for name, requests in cases.items():
        signature = loaded.signatures[name]
        keys = sorted(signature.structured_outputs)
        names = sorted(requests[0])

        @tf.nondifferentiable_batch_function(num_batch_threads=1, max_batch_size=16, batch_timeout_micros=300_000)
        def batched(*tensors, signature=signature, inputs=names, keys=keys):
            out = signature(**dict(zip(inputs, tensors)))
            return [out[key] for key in keys]

        answers = [None] * len(requests)

        def ask(number, requests=requests, answers=answers, batched=batched):
            request = requests[number]
            try:
                answers[number] = batched(*[tf.constant(request[key]) for key in sorted(request)])
            except Exception as err:  # noqa: BLE001 - re-raised in the test's thread below
                answers[number] = err

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(requests))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for request, answer in zip(requests, answers):
            if isinstance(answer, Exception):
                raise AssertionError(f"{name}: the batched request failed") from answer
            alone = signature(**{key: tf.constant(value) for key, value in request.items()})
            for key, value in zip(keys, answer):
                got, want = value.numpy(), alone[key].numpy()
                width = want.shape[1] if want.ndim == 2 else None
                if name.startswith(("recommend", "similar")):
                    for row, k in enumerate(request["k"]):
                        if got.dtype == object:
                            np.testing.assert_array_equal(got[row, :k], want[row, :k], err_msg=f"{name}/{key}")
                        else:
                            np.testing.assert_allclose(got[row, :k], want[row, :k], rtol=1e-5, err_msg=name)
                        if got.dtype == object:
                            assert (got[row, k:] == b"").all()
                    assert got.shape[0] == want.shape[0]
                else:
                    np.testing.assert_allclose(got[:, :width] if width else got, want, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("width, k", [(1000, 10), (1001, 100), (5000, 7), (300, 100)])
def test_grouped_top_k_equals_top_k(width, k) -> None:
    rng = np.random.default_rng(width + k)
    scores = rng.normal(size=(6, width)).astype(np.float32)
    scores[0, :] = -np.inf  # nothing left to rank
    scores[0, 3] = 1.0
    scores[1, rng.integers(0, width, width // 2)] = -np.inf  # many left out
    scores[2] = np.round(scores[2], 1)  # ties
    grouped = tf.function(lambda s: chunks.top_k_grouped(s, k, grouped_from=1), jit_compile=True)
    values, columns = grouped(tf.constant(scores))
    want = tf.math.top_k(scores, k=k)
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    # Columns are the same except among scores equal to the k-th (ties); each holds its value.
    np.testing.assert_array_equal(np.take_along_axis(scores, columns.numpy(), axis=1), values.numpy())
    np.testing.assert_array_equal(columns.numpy()[3:], want.indices.numpy()[3:])
    assert all(len(set(row)) == k for row in columns.numpy()[1:])


def _rewrite_warmup(folder, records) -> None:
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(folder / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        for signature, inputs in records:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=signature))
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def test_the_checker_refuses_what_a_batching_server_refuses(exported, tmp_path) -> None:
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(exported, copy)
    users = np.asarray(["u1", "u2"], dtype=object)
    _rewrite_warmup(copy, [
        ("recommend", {"user_id": users, "k": np.int32(3)}),  # a scalar: no batch dimension
        ("score", {"user_id": users, "item_id": np.asarray(["i1"], dtype=object)}),  # unequal rows
        ("query_embedding", {"user_id": np.asarray(["u1"] * 300, dtype=object)}),  # > max_batch_size 256
    ])  # fmt: skip
    with pytest.raises(ExportError) as failed:
        export_module.run_checker(copy, None)
    message = str(failed.value)
    assert "request 0 (recommend): inputs ['k'] have no batch dimension" in message
    assert "request 2 (query_embedding): 300 rows, more than max_batch_size 256" in message
    assert "different 0th-dimension sizes [1, 2]" in message


@pytest.mark.slow
def test_an_xla_export_needs_the_server_flag_and_says_so(trained, tmp_path) -> None:
    """``xla=True`` compiles the cores (``_XlaMustCompile``), covers every compiled shape in
    the warmup and validates with XLA on; the same files under a server's default flags
    (XLA disabled, as the checker does when the metadata does not ask for it) fail to load."""
    import shutil

    from tensorflow.core.protobuf import saved_model_pb2

    model = trained["two_tower"]
    path = tfrec.export(model, tmp_path / "xla", xla=True)  # validated with XLA enabled
    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes()).meta_graphs[0]
    compiled = {f.signature.name for f in saved.graph_def.library.function if f.attr["_XlaMustCompile"].b}
    assert set(saved.meta_info_def.function_aliases) <= compiled
    metadata = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())
    assert metadata["xla"] is True and metadata["server_flags"] == ["--xla_cpu_compilation_enabled=true"]
    # Every (rows, exclusion width, core) an XLA core can run at has a warmup record.
    module = ServingModule(model.for_serving(), xla=True)
    shapes = set()
    for signature, inputs in tfrec.serving.warmup.read_warmup(path):
        if signature.startswith("recommend") and signature != "recommend_from_history":
            rows = len(inputs["user_id"])
            users = module.model.user_index(tf.constant(inputs["user_id"])).numpy()
            seen = int(np.diff(module.seen_offsets.numpy())[users].max()) if signature != "recommend_including_seen" else 0
            width = seen + (module.exclude_width if signature == "recommend_excluding" else 0)
            core = module.narrow_k if int(inputs["k"].max()) <= module.narrow_k else module.max_k
            shapes.add((module.width_bucket(width), min(b for b in module.row_buckets() if b >= rows), core))
    counts = np.diff(module.seen_offsets.numpy())
    widths = {module.width_bucket(int(c) + extra) for c in counts for extra in (0, module.exclude_width)} | {0}
    assert shapes == {(w, r, c) for w in widths for r in module.row_buckets() for c in (module.narrow_k, module.max_k)}
    stock = tmp_path / "stock" / "1"
    shutil.copytree(path, stock)
    (stock / "assets.extra" / "tfrec_metadata.json").write_text(json.dumps({**metadata, "xla": False}))
    with pytest.raises(ExportError, match="XLA compilation disabled"):
        export_module.run_checker(stock, None)
