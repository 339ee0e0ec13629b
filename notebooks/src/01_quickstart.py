# %% [markdown]
# # Quickstart: from MovieLens ratings to a served recommender
#
# **What you will learn:** load a real dataset, hold out a test set the way
# recommender papers do, train a retrieval model with plain Keras `fit`, judge it against
# a popularity baseline, look at its recommendations by title, and export it for
# TensorFlow Serving.
#
# **Data:** MovieLens 100K (943 users, 1,682 movies, 100,000 ratings). `download=True`
# fetches it once (checksum verified) into `~/.tfrec/datasets`, or reads it from
# `$TFREC_DATA_DIR/ml-100k` when that is set.
#
# **Run time:** about 35 seconds on 2 CPU cores.

# %%
import os
import tempfile

import tfrec  # first: it selects Keras 2 and quiets TensorFlow's start-up logs before TensorFlow loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

tf.keras.utils.set_random_seed(0)  # the same numbers on every run

data = tfrec.datasets.load("movielens-100k", download=True)
titles = data.items["title"]
print(data.summary())
data.items[["title", "genres"]].head()

# %% [markdown]
# ## Hold out each user's latest movie
#
# Leave-last-out puts every user's most recent rating in the test part: the model must
# guess what someone watches next from what they watched before. We treat every rating as
# "watched" (implicit feedback), and keep a second leave-last-out inside the training part
# as a validation set, so we can watch training without ever looking at the test part.

# %%
split = tfrec.data.split(data, "leave-last-out", validation="leave-last-out")
pd.DataFrame({part: [len(x), x.num_users, x.num_items]
              for part, x in (("train", split.train), ("validation", split.validation), ("test", split.test))},
             index=["interactions", "users", "movies"])

# %% [markdown]
# ## Train with Keras `fit`
#
# `tfrec.models.build` returns a Keras model (here the two-tower retrieval model: a user
# tower and a movie tower trained with an in-batch softmax). It trains on a `tf.data`
# pipeline with your own `compile` and `fit`. The `RankingMetrics` callback adds the
# validation Recall@10 to each epoch's logs, so `History` holds both curves.

# %%
model = tfrec.models.build("two_tower", split.train)
model.compile(optimizer=tf.keras.optimizers.Adam(5e-3))
watch = tfrec.evaluation.RankingMetrics(split.train, split.validation, k=10)
history = model.fit(tfrec.data.to_dataset(split.train, batch_size=1024), epochs=8, callbacks=[watch], verbose=2)

# %%
epochs = np.arange(1, len(history.history["loss"]) + 1)
fig, left = plt.subplots(figsize=(6, 3.5))
left.plot(epochs, history.history["loss"], marker="o", color="tab:blue", label="training loss")
left.set_xlabel("epoch")
left.set_ylabel("training loss")
left.set_xticks(epochs)
right = left.twinx()
right.plot(epochs, history.history["val_recall@10"], marker="s", color="tab:orange", label="validation Recall@10")
right.set_ylabel("validation Recall@10")
fig.legend(loc="upper center", ncol=2)
plt.show()
lowest = int(np.argmin(history.history["loss"])) + 1
best = int(np.argmax(history.history["val_recall@10"])) + 1
print(f"training loss lowest at epoch {lowest}; validation Recall@10 best at epoch {best}")

# %% [markdown]
# The training loss falls over the first epochs, then flattens and wobbles: an in-batch
# softmax loss depends on which movies happen to share a batch, and a lower loss is not a
# better ranking. It does not tell you when to stop; the validation recall does. Pick the
# epoch count on it (the line above), never on the test part.
#
# ## Evaluate once on the test part
#
# Full ranking: each user's held-out movie is ranked against every movie they have not
# watched in training. Recall@10 is the share of users whose movie lands in their top 10.
# Popularity (recommend the most watched movies to everyone) is the floor to beat.

# %%
ks = [5, 10, 20, 50]
results = {name: tfrec.evaluate(scorer, split.train, split.test, k=ks)
           for name, scorer in (("two_tower", model), ("popularity", tfrec.evaluation.Popularity(split.train)))}
rows = {name: {m: r[m] for m in ("recall@10", "ndcg@10", "recall@20", "coverage@10")} for name, r in results.items()}
pd.DataFrame(rows).T.round(4)

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, r in results.items():
    ax.plot(ks, [r[f"recall@{k}"] for k in ks], marker="o", label=name)
ax.set_xticks(ks)
ax.set_xlabel("K (movies recommended)")
ax.set_ylabel("Recall@K")
ax.legend()
plt.show()

# %% [markdown]
# ## Recommendations, by title
#
# `recommend` leaves out what the user already watched in training.

# %%
user = split.test.frame["user_id"].iloc[0]
watched = split.train.frame[split.train.frame["user_id"] == user]
item_ids, scores = model.recommend([user], k=10)
pd.DataFrame({
    "watched (a sample)": titles[watched["item_id"].iloc[:10]].to_numpy(),
    "recommended": titles[item_ids[0]].to_numpy(),
    "score": np.round(scores[0], 2),
})

# %% [markdown]
# ## Export, reload, query
#
# `tfrec.export` writes TensorFlow Serving's `<base>/<version>/` layout and validates it in
# a fresh process through the same loader TF Serving uses. `ExportedModel` answers through
# that path too: the served recommendations are the model's.

# %%
path = tfrec.export(model, os.path.join(tempfile.mkdtemp(), "two_tower"), metrics=rows["two_tower"])
served = tfrec.serving.ExportedModel(path)
answer = served.run("recommend", user_id=[user], k=5)
assert list(answer["item_ids"][0]) == list(item_ids[0][:5])
served.close()
pd.DataFrame({"served": titles[answer["item_ids"][0]].to_numpy(), "score": np.round(answer["scores"][0], 2)})

# %% [markdown]
# ## What the numbers mean, and where next
#
# - The two-tower model finds the held-out movie in the top 10 for about half again as
#   many users as popularity does, and the coverage column shows it recommends far more of
#   the catalogue (popularity shows everyone the same few films).
# - One split and one seed: differences of a point or two are noise. Use
#   `tfrec.evaluation.compare` for a paired interval (notebook 06 shows it).
# - Next: `02_matrix_factorization` (ratings, not just "watched"), `03_neural_cf` (other
#   models and protocols), `tfrec tune` to search settings on the validation part, and the
#   README's "Export and TF Serving" section.
