"""Writes the numbered notebooks from the cell sources below (outputs are not committed).

Usage: python notebooks/build.py   (the tests execute the .ipynb files it writes)
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """import os, tempfile
import numpy as np
import matplotlib.pyplot as plt
import tfrec                       # import before anything touches tf.keras (selects Keras 2)
import tensorflow as tf

# Synthetic data by default (a minute on 2 cores); set USE_MOVIELENS = True and point
# MOVIELENS_DIR at a local ml-100k folder to run on MovieLens 100K instead.
USE_MOVIELENS = False
MOVIELENS_DIR = os.environ.get("TFREC_ML100K", "../../shared/data/ml-100k")
data = (tfrec.datasets.load("movielens-100k", data_dir=MOVIELENS_DIR) if USE_MOVIELENS
        else tfrec.datasets.synthetic(seed=0))
print(data.summary())"""

NOTEBOOKS = {
    "01_quickstart": [
        "# Quickstart\n\nLoad a dataset, split it, train a retrieval model with `model.fit` on a "
        "`tf.data` pipeline, evaluate it, recommend, export for TF Serving, reload the export and "
        "query it.",
        SETUP,
        "## Split and train\n\nLeave-last-out holds out each user's latest interaction. The model "
        "is a plain Keras model: `compile` and `fit` are yours.",
        """split = tfrec.data.split(data, "leave-last-out")
model = tfrec.models.build("two_tower", split.train)
model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
history = model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=3, verbose=0)
plt.plot(history.history["loss"], marker="o")
plt.xlabel("epoch")
plt.ylabel("training loss")
plt.show()""",
        "## Evaluate\n\nFull ranking over the catalogue, each user's training items excluded.",
        """metrics = tfrec.evaluate(model, split.train, split.test, k=[10, 20])
popularity = tfrec.evaluate(tfrec.evaluation.Popularity(split.train), split.train, split.test, k=[10, 20])
{name: (round(metrics[name], 4), round(popularity[name], 4)) for name in ("recall@10", "ndcg@10", "recall@20")}""",
        "## Recommend for a user\n\n`recommend` leaves out the items the user already has in the "
        "training split (`exclude_seen=False` keeps them).",
        """user = split.test.frame["user_id"].iloc[0]
seen = split.train.frame.loc[split.train.frame["user_id"] == user, "item_id"].tolist()
item_ids, scores = model.recommend([user], k=5)
assert not set(item_ids[0]) & set(seen)
list(zip(item_ids[0], np.round(scores[0], 3)))""",
        "## Export, reload, query\n\n`tfrec.export` writes TF Serving's `<base>/<version>/` layout and "
        "validates it in a fresh process; `ExportedModel` answers through the same signature path "
        "TF Serving uses.",
        """export_base = os.path.join(tempfile.mkdtemp(), "two_tower")
path = tfrec.export(model, export_base, metrics=metrics)
served = tfrec.serving.ExportedModel(path)
answer = served.run("recommend", user_id=[user], k=5)   # the export leaves seen items out too
assert list(answer["item_ids"][0]) == list(item_ids[0])
answer""",
    ],
    "02_matrix_factorization": [
        "# Matrix factorization on ratings\n\n`biased_mf` (global mean + biases + factors) against "
        "`deep_mf` (factors through non-linear towers) on explicit ratings.",
        SETUP,
        """split = tfrec.data.split(data, "random:0.2")
curves = {}
models = {}
for name, lr in (("biased_mf", 2e-3), ("deep_mf", 1e-3)):
    model = tfrec.models.build(name, split.train)
    model.compile(optimizer=tf.keras.optimizers.Adam(lr))
    train_ds = tfrec.data.to_dataset(split.train, label="rating", batch_size=512)
    rmse = []
    for _ in range(4):
        model.fit(train_ds, epochs=1, verbose=0)
        rmse.append(tfrec.evaluate(model, split.train, split.test)["rmse"])
    curves[name], models[name] = rmse, model
for name, rmse in curves.items():
    plt.plot(range(1, len(rmse) + 1), rmse, marker="o", label=name)
plt.xlabel("epoch")
plt.ylabel("test RMSE")
plt.legend()
plt.show()""",
        "## What the biases capture\n\nItems with the largest learned bias are the ones rated "
        "above what their users usually give; compare with how often each is rated.",
        """mf = models["biased_mf"]
items = np.asarray(mf.item_vocabulary)
bias = mf.head.item_part(mf.item_index(tf.constant(items))).numpy()[:, 0]
counts = split.train.frame["item_id"].value_counts()
order = np.argsort(bias)
print("highest bias:", [(i, round(float(b), 2), int(counts[i])) for i, b in zip(items[order[-5:]], bias[order[-5:]])])
print("lowest bias: ", [(i, round(float(b), 2), int(counts[i])) for i, b in zip(items[order[:5]], bias[order[:5]])])""",
        "## Nearest items in factor space",
        """anchor = items[0]
neighbours, similarity = mf.similar_items([anchor], k=5)
list(zip(neighbours[0], np.round(similarity[0], 3)))""",
    ],
    "03_neural_cf": [
        "# Neural collaborative filtering and two-tower retrieval\n\nGMF, MLP and NeuMF score "
        "(user, item) pairs and learn from sampled negatives; the two-tower model learns from "
        "in-batch negatives, where the log-Q correction matters.",
        SETUP,
        """split = tfrec.data.split(data, "leave-last-out")
vocabulary = tfrec.data.Vocabulary.from_interactions(split.train)
results = {}
for name in ("gmf", "mlp", "neumf"):
    model = tfrec.models.build(name, split.train)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    model.fit(tfrec.data.with_negatives(split.train, vocabulary, num_negatives=4, batch_size=1024), epochs=1, verbose=0)
    results[name] = tfrec.evaluate(model, split.train, split.test, k=[5, 10, 20, 50])""",
        "## The log-Q correction\n\nIn-batch negatives are sampled in proportion to popularity; "
        "without the correction popular items are pushed down too hard.",
        """for logq in (True, False):
    model = tfrec.models.build("two_tower", split.train, logq_correction=logq)
    model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
    model.fit(tfrec.data.to_dataset(split.train, batch_size=512), epochs=2, verbose=0)
    results[f"two_tower (log-Q {'on' if logq else 'off'})"] = tfrec.evaluate(model, split.train, split.test, k=[5, 10, 20, 50])
    if logq:
        tower_model = model
for name, metrics in results.items():
    plt.plot([5, 10, 20, 50], [metrics[f"recall@{k}"] for k in (5, 10, 20, 50)], marker="o", label=name)
plt.xlabel("K")
plt.ylabel("Recall@K")
plt.legend()
plt.show()""",
        "## Item-item similarity and a map of the item embeddings",
        """items = np.asarray(tower_model.item_vocabulary)
print(tower_model.similar_items(items[:3], k=5)[0])
embeddings = tower_model.candidate_embedding(tf.constant(items)).numpy()
centered = embeddings - embeddings.mean(0)
_, _, vt = np.linalg.svd(centered, full_matrices=False)
xy = centered @ vt[:2].T
counts = split.train.frame["item_id"].value_counts().reindex(items).to_numpy()
plt.scatter(xy[:, 0], xy[:, 1], c=np.log1p(counts), s=6, cmap="viridis")
plt.colorbar(label="log(1 + interactions)")
plt.title("item embeddings, first two principal axes")
plt.show()""",
    ],
    "04_content_and_cold_start": [
        "# Content models and item cold start\n\nThe item tower reads the item's text, so items "
        "nobody has interacted with yet can be recommended.",
        SETUP,
        """split = tfrec.data.split(data, "cold-items:0.2")
cold_items = sorted(set(split.test.frame["item_id"]))
print(f"{len(cold_items)} items never seen in training")
scores, models_by_name = {}, {}
for name in ("content_tower", "hybrid"):
    model = tfrec.models.build(name, split.train)
    model.compile(optimizer=tf.keras.optimizers.Adam(2e-3))
    model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=2, verbose=0)
    scores[name] = tfrec.evaluate(model, split.train, split.test, k=[20], protocol="cold-start")
    models_by_name[name] = model
scores["popularity of the cold items (oracle)"] = tfrec.evaluate(
    tfrec.evaluation.Popularity(split.test), split.train, split.test, k=[20], protocol="cold-start")
plt.barh(list(scores), [s["recall@20"] for s in scores.values()])
plt.xlabel("Recall@20 among cold items")
plt.show()""",
        "## Recommending a brand-new item from its text\n\nThe model scores raw text directly: "
        "the same path the exported `score_text` signature takes.",
        """model = models_by_name["content_tower"]
text = data.items.loc[cold_items[0], "text"]
users = list(model.user_vocabulary[:1000])
queries = model.query_embedding(tf.constant(users))
item = model.candidate_from_text(tf.constant([text]))
best = np.argsort(-(queries.numpy() @ item.numpy()[0]))[:5]
print(repr(text[:80]), "->", [users[i] for i in best])""",
    ],
    "05_export_and_serve": [
        "# Export and serve\n\nThe SavedModel layout, its signatures, a REST request body for TF "
        "Serving, validation through the serving path, and latency.",
        SETUP,
        """split = tfrec.data.split(data, "leave-last-out")
model = tfrec.models.build("implicit_mf", split.train)
model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
model.fit(tfrec.data.to_dataset(split.train, batch_size=256), epochs=2, verbose=0)
base = os.path.join(tempfile.mkdtemp(), "implicit_mf")
path = tfrec.export(model, base)
for root, _, files in os.walk(base):
    depth = root[len(base):].count(os.sep)
    print("  " * depth + os.path.basename(root) + "/", *sorted(files)[:4])""",
        "## Signatures",
        """served = tfrec.serving.ExportedModel(path)
served.describe()""",
        "## A REST body for `POST /v1/models/implicit_mf:predict`\n\nTF Serving's columnar "
        "`inputs` form (needed because `k` is a scalar); here it is fed to the same signature.",
        """import json
body = {"signature_name": "recommend", "inputs": {"user_id": [model.user_vocabulary[0]], "k": 5}}
print(json.dumps(body))
served.run(body["signature_name"], **body["inputs"])""",
        "## Validation and latency",
        """import time

report = tfrec.serving.validate(path)
print(report["requests"], "warmup requests matched through tf.compat.v1.saved_model.loader.load")
users = np.asarray(model.user_vocabulary)
times = []
for _ in range(200):
    start = time.perf_counter()
    served.run("recommend", user_id=users[np.random.randint(len(users), size=1)], k=10)
    times.append((time.perf_counter() - start) * 1000)
print(f"recommend, 1 user: p50 {np.percentile(times, 50):.2f} ms, p99 {np.percentile(times, 99):.2f} ms")
plt.hist(times, bins=40)
plt.xlabel("ms per request")
plt.show()""",
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook(
            cells=[new_markdown_cell(c) if c.startswith("#") else new_code_cell(c) for c in cells],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        nbformat.write(notebook, HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
