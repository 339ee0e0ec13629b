# %% [markdown]
# # Matrix factorization on explicit ratings
#
# **What you will learn:** predict star ratings with biased matrix factorization
# (global mean + user and movie biases + a dot product of factors), read its learning
# curves from Keras `History`, compare it with Bayesian MF (factors sampled by Gibbs
# sampling: no learning rate or L2 to tune), check how well predictions are calibrated,
# and see what the biases and factors learned, by title.
#
# **Data:** MovieLens 100K, its standard fold `u1` (`u1.base` for training, `u1.test`
# for testing: an 80/20 split of the ratings), with 10% of the training ratings held out
# for validation.
#
# **Run time:** under a minute on 2 CPU cores.

# %%
import tfrec  # first: it selects Keras 2 and quiets TensorFlow's start-up logs before TensorFlow loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

tf.keras.utils.set_random_seed(0)  # the same numbers on every run

data = tfrec.datasets.load("movielens-100k", download=True)
titles = data.items["title"]
split = tfrec.data.split(data, "fold:u1", validation="random:0.1")
print(len(split.train), "training,", len(split.validation), "validation,", len(split.test), "test ratings")

# %% [markdown]
# ## Biased MF with Keras `fit`, validation curve included
#
# Rating models yield `(features, rating)` batches (`label="rating"`) and report RMSE;
# passing `validation_data` makes Keras record `val_rmse` per epoch as well.

# %%
model = tfrec.models.build("biased_mf", split.train)
model.compile(optimizer=tf.keras.optimizers.Adam(model.config.learning_rate))
history = model.fit(
    tfrec.data.to_dataset(split.train, label="rating", batch_size=256),
    validation_data=tfrec.data.to_dataset(split.validation, label="rating", batch_size=4096, shuffle=False),
    epochs=15, verbose=2,
)

# %%
epochs = np.arange(1, len(history.history["rmse"]) + 1)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs, history.history["rmse"], marker="o", label="training RMSE")
ax.plot(epochs, history.history["val_rmse"], marker="s", label="validation RMSE")
ax.set_xlabel("epoch")
ax.set_ylabel("RMSE (stars)")
ax.set_xticks(epochs)
ax.legend()
plt.show()

# %% [markdown]
# Training RMSE keeps falling while validation RMSE flattens: the gap is what the
# factors memorize. The defaults (30 epochs, `bench/TUNING.md`) were chosen for this
# trade-off; 15 keeps the notebook short.
#
# ## Bayesian MF: no learning rate to tune
#
# `bayesian_mf` samples factors, priors and noise (Gibbs sampling inside `fit`) and
# predicts the average of the sampled rating matrices. It trains through the same recipe
# (`tfrec.training.train`); 80 sweeps here instead of the default 400.

# %%
bayes = tfrec.training.train("bayesian_mf", split.train, epochs=80, burn_in=20, verbose=0).model
mean_rating = float(split.train.frame["rating"].mean())
rows = {}
for name, scorer in (("biased_mf (15 epochs)", model), ("bayesian_mf (80 sweeps)", bayes)):
    metrics = tfrec.evaluate(scorer, split.train, split.test)
    rows[name] = {"RMSE": metrics["rmse"], "MAE": metrics["mae"]}
error = split.test.frame["rating"] - mean_rating
rows["global mean (baseline)"] = {"RMSE": float(np.sqrt((error**2).mean())), "MAE": float(error.abs().mean())}
pd.DataFrame(rows).T.round(4)

# %% [markdown]
# ## Are the predictions calibrated?
#
# For each true rating, the spread of what the model predicted. A calibrated model's
# boxes climb with the true rating; shrinkage toward the mean (the boxes squeezed toward
# 3.5) is expected from any L2-regularized or Bayesian model.

# %%
test = split.test.frame
predicted = bayes.score(test["user_id"].to_numpy(), test["item_id"].to_numpy())
groups = [predicted[test["rating"].to_numpy() == r] for r in (1, 2, 3, 4, 5)]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.boxplot(groups, showfliers=False)
ax.set_xticks(range(1, 6), [f"{r} stars" for r in range(1, 6)])
ax.set_xlabel("true rating")
ax.set_ylabel("predicted rating (bayesian_mf)")
plt.show()

# %% [markdown]
# ## What the biases learned
#
# A movie's bias is how much better (or worse) it is rated than its viewers' usual
# ratings predict. With few ratings a bias stays near zero (the regularization), which is
# why the top of the list is well-known films rather than obscure ones with one 5-star
# rating.

# %%
items = np.asarray(model.item_vocabulary)
bias = model.head.item_part(model.item_index(tf.constant(items))).numpy()[:, 0]
counts = split.train.frame["item_id"].value_counts()
table = pd.DataFrame({"title": titles[items].to_numpy(), "bias": bias, "ratings": counts[items].to_numpy()})
pd.concat([table.nlargest(6, "bias"), table.nsmallest(6, "bias")]).round(3)

# %% [markdown]
# ## Nearest movies in factor space
#
# `similar_items` ranks movies by the cosine of their candidate-tower outputs.

# %%
anchors = [data.items.index[titles == t][0] for t in ("Star Wars (1977)", "Fargo (1996)")]
neighbours, similarity = model.similar_items(anchors, k=6)
pd.DataFrame({titles[a]: titles[n].to_numpy() for a, n in zip(anchors, neighbours)})

# %% [markdown]
# ## What the numbers mean, and where next
#
# - Both factor models beat the global mean by a wide margin; on the five folds
#   (`bench/results/mf_quality.md`) Bayesian MF's RMSE is the lower of the two.
# - A 0.01 RMSE difference on one fold is within fold-to-fold noise: compare over folds.
# - Next: `03_neural_cf` for implicit feedback and ranking protocols; `tfrec tune
#   biased_mf --dataset movielens-100k --split fold:u1` to search settings on validation.
