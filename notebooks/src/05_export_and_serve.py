# %% [markdown]
# # Export and serve with TensorFlow Serving
#
# **What you will learn:** what an export holds (TF Serving's versioned SavedModel layout,
# named signatures, warmup requests, metadata), the REST request bodies that match each
# signature, how the export is validated through the loader TF Serving itself uses, and
# what a request costs as the batch grows.
#
# **Data:** MovieLens 100K; the model is `implicit_mf` (the export path is the same for
# every model).
#
# **Run time:** under a minute on 2 CPU cores.

# %%
import json
import os
import tempfile
import time

import tfrec  # first: it selects Keras 2 and quiets TensorFlow's start-up logs before TensorFlow loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

tf.keras.utils.set_random_seed(0)  # the same numbers on every run

data = tfrec.datasets.load("movielens-100k", download=True)
titles = data.items["title"]
split = tfrec.data.split(data, "leave-last-out")
model = tfrec.training.train("implicit_mf", split.train, epochs=5, verbose=2).model

# %% [markdown]
# ## The layout
#
# `tfrec.export(model, base)` writes `base/<version>/` (the next free integer), validates
# it in a fresh process, and only then renames it into place: TF Serving, watching
# `base/`, never sees a half-written version. `recommend_excluding` takes a fixed number
# of item ids a row (`exclude_width`, 64 unless set; clients pad with `""`) so that TF
# Serving can batch any two requests; this export takes 4, to keep the bodies below short.

# %%
base = os.path.join(tempfile.mkdtemp(), "implicit_mf")
path = tfrec.export(model, base, exclude_width=4)
for root, _, files in sorted(os.walk(base)):
    depth = root[len(base):].count(os.sep)
    print("  " * depth + (os.path.basename(root) or base) + "/", ", ".join(sorted(files)))

# %% [markdown]
# ## Signatures
#
# Each signature has named inputs and outputs; the metadata file describes them in words.

# %%
metadata = json.loads((path / "assets.extra" / "tfrec_metadata.json").read_text())
served = tfrec.serving.ExportedModel(path)
described = served.describe()
pd.DataFrame({
    "inputs": {name: ", ".join(d["inputs"]) for name, d in described.items()},
    "outputs": {name: ", ".join(d["outputs"]) for name, d in described.items()},
    "what it does": {name: d["does"] for name, d in metadata["signatures"].items()},
})

# %% [markdown]
# ## REST request bodies
#
# TF Serving's REST API takes `POST /v1/models/implicit_mf:predict` with a JSON body. The
# columnar `inputs` form fits every signature; every input is one value per row (`k` too),
# which TF Serving's server-side batching needs. Each body below is also run here through
# the same signature, so the bodies are known to match.

# %%
user, item = model.user_vocabulary[0], model.item_vocabulary[0]
bodies = {
    "recommend": {"user_id": [user], "k": [5]},
    "recommend_excluding": {"user_id": [user], "k": [5], "exclude_item_ids": [[item, "", "", ""]]},
    "score": {"user_id": [user, user], "item_id": [item, model.item_vocabulary[1]]},
    "similar_items": {"item_id": [item], "k": [3]},
}
for signature, inputs in bodies.items():
    print(json.dumps({"signature_name": signature, "inputs": inputs}))
    served.run(signature, **inputs)
answer = served.run("recommend", **bodies["recommend"])
pd.DataFrame({"recommended": titles[answer["item_ids"][0]].to_numpy(), "score": np.round(answer["scores"][0], 3)})

# %% [markdown]
# ## Validation through TF Serving's loader
#
# `tfrec.serving.validate` (CLI `tfrec validate`) loads the export in a fresh Python
# process that imports TensorFlow only, through `tf.compat.v1.saved_model.loader.load`
# and the signature tensors by name (what TF Serving does), replays the warmup requests
# stored in `assets.extra/` and compares every output with this process.

# %%
report = tfrec.serving.validate(path)
print(report["requests"], "warmup requests matched;", "signatures:", len(metadata["signatures"]))

# %% [markdown]
# ## Latency as the batch grows
#
# TF Serving can batch requests server-side (`--enable_batching`; an example parameters
# file is in `assets.extra/`). Here: milliseconds per request and per user for batches of
# 1 to 256 users, through the same signature path (on this machine's CPU; the export
# compiles its scoring core with XLA for GPU and TPU).

# %%
users = np.asarray(model.user_vocabulary)
rng = np.random.default_rng(0)
rows = []
for batch in (1, 4, 16, 64, 256):
    for _ in range(10):  # the first calls per shape compile the XLA core (rows and exclusion widths)
        served.run("recommend", user_id=users[rng.integers(0, len(users), batch)], k=10)
    times = []
    for _ in range(30):
        chosen = users[rng.integers(0, len(users), batch)]
        start = time.perf_counter()
        served.run("recommend", user_id=chosen, k=10)
        times.append((time.perf_counter() - start) * 1000)
    rows.append({"batch": batch, "p50 ms": np.percentile(times, 50), "p99 ms": np.percentile(times, 99),
                 "ms per user": np.percentile(times, 50) / batch})
latency = pd.DataFrame(rows).set_index("batch").round(3)
latency

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(latency.index, latency["p50 ms"], marker="o", label="p50 per request")
ax.plot(latency.index, latency["ms per user"], marker="s", label="p50 per user")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xticks(latency.index, [str(b) for b in latency.index])
ax.set_xlabel("users per request (batch size)")
ax.set_ylabel("milliseconds")
ax.legend()
plt.show()
served.close()

# %% [markdown]
# ## An approximate index for large catalogues
#
# `recommend` above scores all 1,682 movies per user. For a catalogue of millions,
# `index="approx"` builds an inverted-file index at export: k-means partitions of the item
# embeddings; a request scores the partition centres, then only the items of its best
# partitions. It probes as few partitions as reach the asked recall against the exact
# ranking on a sample of users, and the metadata records what it chose and measured.

# %%
approx_path = tfrec.export(model, base, index="approx", recall=0.95)
index = json.loads((approx_path / "assets.extra" / "tfrec_metadata.json").read_text())["index"]
print(f"version {approx_path.name}:", json.dumps(index, indent=1))
exact_served, approx_served = tfrec.serving.ExportedModel(path), tfrec.serving.ExportedModel(approx_path)
sample = list(rng.choice(users, 300, replace=False))
exact_top = exact_served.run("recommend", user_id=sample, k=[10] * 300)["item_ids"]
approx_top = approx_served.run("recommend", user_id=sample, k=[10] * 300)["item_ids"]
overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx_top, exact_top)])
print(f"recall@10 of the approximate export against the exact one, 300 users: {overlap:.3f}")
exact_served.close()
approx_served.close()

# %% [markdown]
# At 1,682 items the exact ranking is already a fraction of a millisecond, so the index buys
# nothing here; `bench/results/approx_index.md` measures it on a million items against the
# exact export and `faiss` at the same recall.
#
# ## What the numbers mean, and where next
#
# - Per-request time grows far slower than the batch: batching is how a server gets
#   throughput, at the cost of the wait to fill a batch.
# - These are in-process CPU timings of this notebook's machine;
#   `bench/results/serving_speed.md` has the reproducible figures.
# - Serve it: `docker run -p 8501:8501 -v "$PWD/exports/implicit_mf:/models/implicit_mf"
#   -e MODEL_NAME=implicit_mf tensorflow/serving` (README, "Export and TF Serving").
