"""The bad-input corpus: every case is a clear error naming the problem, or a correct answer.

Loaders, the Python API, the CLI and the exported signatures (property-based with
hypothesis). No case may crash with an unexplained traceback, corrupt an export or leave a
partial file behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfrec
from tfrec._keras import tf
from tfrec.cli import main
from tfrec.data import Interactions, split
from tfrec.training import train

MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,Heat (1995),Action\n"
U_ITEM = "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"


def _latest(tmp_path: Path, ratings: str, movies: str = MOVIES) -> Path:
    (tmp_path / "ratings.csv").write_text(ratings, encoding="utf-8")
    (tmp_path / "movies.csv").write_text(movies, encoding="utf-8")
    return tmp_path


def _ml100k(tmp_path: Path, data: bytes, item: bytes = U_ITEM.encode()) -> Path:
    (tmp_path / "u.data").write_bytes(data)
    (tmp_path / "u.item").write_bytes(item)
    return tmp_path


HEADER = "userId,movieId,rating,timestamp\n"

# (case id, ratings.csv text, expected error fragment or None for "loads correctly")
LATEST_CASES = [
    ("truncated-line", HEADER + "1,1,4.0,100\n2,2\n", "line(s) 3 lack field 'rating'"),
    ("wrong-separator", "userId;movieId;rating;timestamp\n1;1;4;100\n", "missing column(s)"),
    ("missing-column", "userId,movieId,rating\n1,1,4\n", "missing column(s) ['timestamp']"),
    ("empty-file", "", "the file is empty"),
    ("header-only", HEADER, "the file is empty (no data rows)"),
    ("non-numeric-rating", HEADER + "1,1,good,100\n", "rating"),
    ("nan-rating", HEADER + "1,1,nan,100\n", "rating"),
    ("inf-rating", HEADER + "1,1,inf,100\n", "rating"),
    ("float-timestamp", HEADER + "1,1,4,100.5\n", "timestamp"),
    ("duplicate-rows", HEADER + "1,1,4,100\n1,1,4,100\n", "duplicate"),
    ("negative-rating", HEADER + "1,1,-1,100\n2,2,3,100\n", None),
    ("unicode-ids", HEADER + "ユーザー,1,4,100\nüser 2,2,3,100\n", None),
    ("long-id", HEADER + "u" * 1024 + ",1,4,100\n2,2,3,100\n", None),
    ("too-long-id", HEADER + "u" * 5000 + ",1,4,100\n2,2,3,100\n", "ids longer than 1024 characters at rows 0"),
    ("crlf-line-ends", HEADER.replace("\n", "\r\n") + "1,1,4,100\r\n2,2,3,100\r\n", None),
]


@pytest.mark.parametrize("ratings, fragment", [c[1:] for c in LATEST_CASES], ids=[c[0] for c in LATEST_CASES])
def test_csv_loader_cases(tmp_path, ratings, fragment) -> None:
    folder = _latest(tmp_path, ratings)
    if fragment is None:
        data = tfrec.datasets.load("movielens-latest-small", folder)
        assert len(data) == ratings.count("\n") - 1 and data.frame["user_id"].map(len).max() >= 1
        return
    with pytest.raises(tfrec.DataError) as info:
        tfrec.datasets.load("movielens-latest-small", folder)
    assert fragment in str(info.value) and str(folder) in str(info.value)


ML100K_CASES = [
    ("tab-data", b"1\t1\t4\t100\n2\t1\t3\t101\n", None),
    ("spaces-instead-of-tabs", b"1 1 4 100\n", "lack field"),
    ("truncated-u-data", b"1\t1\t4\t100\n2\t1\n", "line(s) 2 lack field"),
    ("utf8-not-latin1-u-item", b"1\t1\t4\t100\n", None),
    ("binary-garbage", b"\xff\xfe\x00\x01\x02", "u.data"),
]


@pytest.mark.parametrize("data, fragment", [c[1:] for c in ML100K_CASES], ids=[c[0] for c in ML100K_CASES])
def test_ml100k_loader_cases(tmp_path, data, fragment) -> None:
    item = U_ITEM.replace("Toy Story", "Café Étoile").encode("latin-1")
    folder = _ml100k(tmp_path, data, item)
    if fragment is None:
        loaded = tfrec.datasets.load("movielens-100k", folder)
        assert len(loaded) == data.count(b"\n") and "Café Étoile" in loaded.items["title"].iloc[0]
        return
    with pytest.raises(tfrec.DataError) as info:
        tfrec.datasets.load("movielens-100k", folder)
    assert fragment in str(info.value)


def test_missing_dataset_folder_says_where_it_looked(tmp_path) -> None:
    with pytest.raises(tfrec.DatasetNotFoundError, match="nowhere does not exist"):
        tfrec.datasets.load("movielens-100k", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(tfrec.DatasetNotFoundError, match=r"has none of its files \['u.data', 'u.item'\]"):
        tfrec.datasets.load("movielens-100k", tmp_path / "empty")


# === Python API ===
@pytest.fixture(scope="module")
def model_and_data(small):
    parts = split(small, "random:0.2", seed=0)
    return train("implicit_mf", parts.train, epochs=1, verbose=0).model, parts


API_ERRORS = [
    ("recommend-k-zero", lambda m, p: m.recommend(["u1"], k=0), "k must be an integer in"),
    ("recommend-k-negative", lambda m, p: m.recommend(["u1"], k=-3), "k must be an integer in"),
    ("recommend-k-too-big", lambda m, p: m.recommend(["u1"], k=10**6), "k must be an integer in"),
    ("recommend-k-float", lambda m, p: m.recommend(["u1"], k=2.5), "k must be an integer in"),
    ("recommend-k-bool", lambda m, p: m.recommend(["u1"], k=True), "k must be an integer in"),
    (
        "recommend-exclude-length",
        lambda m, p: m.recommend(["u1", "u2"], k=2, exclude=[[]]),
        "exclude has 1 lists",
    ),
    ("similar-k-zero", lambda m, p: m.similar_items(["i1"], k=0), "k must be an integer in"),
    ("score-length-mismatch", lambda m, p: m.score(["u1"], ["i1", "i2"]), "1 user ids but 2 item ids"),
    ("score-int-tensor", lambda m, p: m.score(tf.constant([1]), ["i1"]), "user_ids must be strings"),
    (
        "evaluate-bad-protocol",
        lambda m, p: tfrec.evaluate(m, p.train, p.test, protocol="top"),
        "bad protocol",
    ),
    ("evaluate-k-zero", lambda m, p: tfrec.evaluate(m, p.train, p.test, k=[0]), "k"),
    (
        "evaluate-sampled-zero",
        lambda m, p: tfrec.evaluate(m, p.train, p.test, protocol="sampled:0"),
        "bad protocol",
    ),
    (
        "cold-start-without-cold-items",
        lambda m, p: tfrec.evaluate(m, p.train, p.test, protocol="cold-start"),
        "no item absent from training",
    ),
    (
        "to-dataset-batch-zero",
        lambda m, p: tfrec.data.to_dataset(p.train, batch_size=0),
        "batch_size must be",
    ),
    ("to-dataset-bad-label", lambda m, p: tfrec.data.to_dataset(p.train, label="clicks"), "label must be"),
    ("split-bad-spec", lambda m, p: split(p.train, "halves"), "bad split spec"),
    ("split-bad-fraction", lambda m, p: split(p.train, "random:1.5"), "between 0 and 1"),
    ("build-unknown-model", lambda m, p: tfrec.models.build("svd", p.train), "unknown model"),
    (
        "build-unknown-field",
        lambda m, p: tfrec.models.build("gmf", p.train, factor=3),
        "unknown config field",
    ),
    ("build-bad-value", lambda m, p: tfrec.models.build("two_tower", p.train, temperature=-1), "temperature"),
    (
        "build-bad-string",
        lambda m, p: tfrec.models.build("two_tower", p.train, epochs="many"),
        "not a valid int",
    ),
    (
        "two-tower-missing-feature",
        lambda m, p: tfrec.models.build("two_tower", p.train, item_features=("year",)),
        "no item column 'year'",
    ),
    (
        "content-rating-without-ratings",
        lambda m, p: tfrec.models.build(
            "content_rating", p.train.with_frame(p.train.frame.drop(columns="rating"))
        ),
        "needs explicit ratings",
    ),
    ("export-unregistered", lambda m, p: tfrec.export(object(), "/tmp/x"), "not a registered tfrec model"),
    ("export-bad-version", lambda m, p: tfrec.export(m, "/tmp/x", version=-1), "version must be"),
    ("export-bad-default-k", lambda m, p: tfrec.export(m, "/tmp/x", default_k=0), "default_k must be"),
]


@pytest.mark.parametrize("call, fragment", [c[1:] for c in API_ERRORS], ids=[c[0] for c in API_ERRORS])
def test_api_errors_are_clear(model_and_data, call, fragment) -> None:
    model, parts = model_and_data
    with pytest.raises(tfrec.TfrecError) as info:
        call(model, parts)
    assert fragment in str(info.value)


INTERACTION_ERRORS = [
    ("empty-frame", pd.DataFrame({"user_id": [], "item_id": []}), "no interactions"),
    ("missing-item-column", pd.DataFrame({"user_id": ["a"]}), "item_id"),
    ("nan-user", pd.DataFrame({"user_id": [None, "b"], "item_id": ["x", "y"]}), "user_id"),
    ("empty-string-item", pd.DataFrame({"user_id": ["a"], "item_id": [""]}), "item_id"),
    ("string-rating", pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "rating": ["five"]}), "rating"),
]


@pytest.mark.parametrize(
    "frame, fragment", [c[1:] for c in INTERACTION_ERRORS], ids=[c[0] for c in INTERACTION_ERRORS]
)
def test_interactions_reject_bad_frames(frame, fragment) -> None:
    with pytest.raises(tfrec.DataError) as info:
        Interactions(frame, name="bad")
    assert fragment in str(info.value)


def test_integer_and_unicode_ids_are_correct_answers(model_and_data) -> None:
    data = Interactions(pd.DataFrame({"user_id": [1, 2, 2], "item_id": [10, 10, 11]}), name="ints")
    assert data.frame["user_id"].tolist() == ["1", "2", "2"]
    model, _ = model_and_data
    scores = model.score(np.asarray([1, "ü" * 300, ""], dtype=object), ["i1", "i2", "nope"])
    assert scores.shape == (3,) and np.isfinite(scores).all()


# === CLI ===
CLI_ERRORS = [
    (["train", "gmf", "--export-dir", "/proc/nope"], "argument --export-dir: cannot write to /proc/nope"),
    (
        ["train", "gmf", "--batch-size", "-1"],
        "argument --batch-size: must be an integer in [1, 2147483647], got -1",
    ),
    (["train", "gmf", "--set", "=3"], "argument --set: expected KEY=VALUE"),
    (["recommend", "/nonexistent", "--user", "1", "-k", "x"], "argument -k: invalid int value"),
    (["export", "/etc/hostname", "--export-dir", "/tmp/tfrec-x"], "is not a zip .keras archive"),
    (["validate"], "the following arguments are required: export_dir"),
]


@pytest.mark.parametrize(
    "argv, fragment", CLI_ERRORS, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in enumerate(CLI_ERRORS)]
)
def test_cli_errors_are_one_line(argv, fragment, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tfrec: error: ") and fragment in err, err


# === Exported signatures ===
@pytest.fixture(scope="module")
def served(model_and_data, tmp_path_factory):
    model, _ = model_and_data
    path = tfrec.export(model, tmp_path_factory.mktemp("bad") / "implicit_mf")
    served = tfrec.serving.ExportedModel(path)
    yield model, served, path
    served.close()


ids = st.text(min_size=0, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=st.lists(ids, min_size=0, max_size=300), k=st.integers(min_value=-5, max_value=3000))
def test_recommend_signature_never_crashes(served, users, k) -> None:
    model, session, path = served
    users = np.asarray(users, dtype=object)
    max_k = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())["max_k"]
    if k < 1:
        with pytest.raises(tfrec.TfrecError, match="k must be >= 1"):
            session.run("recommend", user_id=users, k=k)
        return
    if k > max_k:  # the client refuses what a server would cap
        with pytest.raises(tfrec.TfrecError, match="is more than this export answers"):
            session.run("recommend", user_id=users, k=k)
        return
    out = session.run("recommend", user_id=users, k=k)
    # k is one value per row: a request of no rows carries none, and is answered 1 wide.
    width = min(k, max_k, len(model.item_vocabulary)) if len(users) else 1
    assert out["item_ids"].shape == (len(users), width) and out["scores"].shape == (len(users), width)
    assert np.isfinite(out["scores"]).all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(ids, ids), min_size=0, max_size=50))
def test_score_signature_answers_unknown_and_empty_ids(served, pairs) -> None:
    model, session, _ = served
    users = np.asarray([p[0] for p in pairs], dtype=object)
    items = np.asarray([p[1] for p in pairs], dtype=object)
    out = session.run("score", user_id=users, item_id=items)["score"]
    assert out.shape == (len(pairs),) and np.isfinite(out).all()
    if len(pairs):
        np.testing.assert_allclose(out, model.score(users, items), rtol=1e-5, atol=1e-6)


def test_signature_input_errors_are_clear(served) -> None:
    _, session, path = served
    with pytest.raises(tfrec.TfrecError, match="takes inputs"):
        session.run("recommend", user_id=["a"])
    with pytest.raises(tfrec.TfrecError, match="no signature 'predict'"):
        session.run("predict", user_id=["a"])
    with pytest.raises(tfrec.TfrecError, match="user_id must be strings"):
        session.run("recommend", user_id=[1, 2], k=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="lengths differ"):
        session.run("score", user_id=["a", "b"], item_id=["x"])
    big = session.run("recommend", user_id=np.asarray(["u1"] * 5000, dtype=object), k=3)
    assert big["item_ids"].shape == (5000, 3)
    # Nothing above touched the export.
    meta = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())
    assert meta["model"] == "implicit_mf" and tfrec.serving.validate(path)["requests"] == len(tfrec.serving.warmup.read_warmup(path)) == 50
