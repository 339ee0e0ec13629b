"""Recommender: the one base of every tfrec model (a frozen config plus state derived from data)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import tensorflow_recommenders as tfrs

from tfrec._keras import tf
from tfrec.core.chunks import in_batches
from tfrec.core.parameter_servers import dense_weights
from tfrec.data.interactions import Interactions, as_interactions
from tfrec.data.model_data import ModelData
from tfrec.data.pipeline import to_dataset
from tfrec.data.seen import SeenItems
from tfrec.errors import TfrecError
from tfrec.models.registry import config_from_dict, config_to_dict
from tfrec.models.scoring import Scorer


class Recommender(Scorer, tfrs.Model):
    """A Keras model built from its config (hyperparameters) and its :class:`ModelData`.

    ``register()`` stamps ``registry_name``, ``task`` and ``config_class`` on the class.
    A model's constructor takes ``(config, data)`` and creates every variable, so its
    defaults live in the config dataclass alone; :meth:`get_config` / :meth:`from_config`
    are written here once for every model, from the config and the data.

    A model separates lookups (:meth:`user_index`, :meth:`item_index`: string ids to
    int64 indices, 0 for unknown ids) from the tower math on indices
    (:meth:`query_from_index`, :meth:`candidate_from_index`), so the export can compile
    the math with XLA; by default these delegate to ``self.query_tower`` and
    ``self.candidate_tower`` (``IdTower``-like layers with ``lookup`` and ``from_index``).
    The seen-items table (``seen_items``, set by ``tfrec.models.build`` or
    :meth:`remember_seen`) is stored with the weights, not in the config.

    Hooks a model may override: :meth:`prepare` (what it derives from data),
    :meth:`task_for` (a task that depends on the config), :meth:`training_data`.
    """

    registry_name: ClassVar[str] = ""
    config_class: ClassVar[type]
    # False for models fitted without gradients (sampled or solved): compiled without an optimizer.
    gradient_trained: ClassVar[bool] = True
    seen_items: SeenItems | None = None

    def __init__(self, config: Any = None, data: ModelData | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(data, ModelData):
            raise TypeError(
                f"{type(self).__name__} needs its ModelData; build it with "
                f"{type(self).__name__}.from_data(train, config) or tfrec.models.build(name, train)"
            )
        self.config = self.coerce_config(config)
        self.data = data
        self.task = self.task_for(self.config)
        self.user_vocabulary = data.users
        self.item_vocabulary = data.items

    # === Construction ===
    @classmethod
    def coerce_config(cls, config: Any = None) -> Any:
        """The model's config from None (the defaults), a config object or a JSON dict."""
        if config is None:
            return cls.config_class()
        if isinstance(config, dict):
            return config_from_dict(cls.config_class, config)
        if not isinstance(config, cls.config_class):
            raise TypeError(
                f"{cls.__name__} takes a {cls.config_class.__name__}, got {type(config).__name__}"
            )
        return config

    @classmethod
    def task_for(cls, config: Any) -> str:
        """The task a model with ``config`` performs (the registered one by default)."""
        return cls.task

    @classmethod
    def prepare(cls, train: Interactions, config: Any) -> ModelData:
        """What the model derives from its training split (vocabularies, counts, ratings)."""
        return ModelData.of(train, model=cls.registry_name, ratings=cls.task_for(config) == "rating")

    @classmethod
    def from_data(cls, train: Interactions, config: Any = None):
        """The model for a training split (a DataFrame is accepted), with ``config`` or the defaults."""
        config = cls.coerce_config(config)
        return cls(config, cls.prepare(as_interactions(train, "train"), config))

    @classmethod
    def training_data(cls, train: Interactions, config: Any, seed: int = 0) -> tf.data.Dataset:
        """Batches of the training split reshuffled each epoch: ``(features, rating)`` for
        rating models, positive pairs otherwise."""
        label = "rating" if cls.task_for(config) == "rating" else None
        return to_dataset(train, label=label, batch_size=config.batch_size, seed=seed)

    @classmethod
    def stream_fields(cls, config: Any) -> tuple[str, ...] | None:
        """The fields a streamed batch carries besides the ids (and a rating model's label)
        for this config, or None when the model cannot train from a stream of files (it
        needs the data in memory: side tables, histories, sampled negatives). None by default."""
        return None

    @classmethod
    def working_bytes(cls, config: Any, data: ModelData) -> int:
        """Memory a training step needs beyond the weights and the optimizer's slots
        (bytes; a solver's matrices, say): 0 by default."""
        return 0

    def get_config(self) -> dict:
        return {"config": config_to_dict(self.config), "data": self.data.to_config(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if "config" not in config or "data" not in config:
            raise TfrecError(
                f"this {cls.__name__} was saved by an earlier tfrec (its config has no 'config' and "
                "'data' parts); train and save it again"
            )
        return cls(config.pop("config"), ModelData.from_config(config.pop("data")), **config)

    def export_config(self) -> dict:
        """What an export's metadata may say about this model (hyperparameters and sizes,
        never ids, texts or profiles)."""
        return {
            "config": config_to_dict(self.config),
            "vocabulary_sizes": {"users": len(self.user_vocabulary), "items": len(self.item_vocabulary)},
        }

    def for_serving(self):
        """A copy holding only what inference reads (what the export saves): uncompiled, so
        no optimizer slots; the same weights and seen-items table."""
        copy = type(self)(self.config, self.data, name=self.name)  # no JSON round trip of the ids
        copy.set_weights(dense_weights(self))  # tables split over parameter servers: gathered
        copy.seen_items = self.seen_items
        return copy.build_now()

    def before_fit(self, train: Interactions, pretrain) -> None:
        """Called by the training recipe before ``fit``; ``pretrain(name, **overrides)``
        trains another registered model on ``train`` with the same recipe (NeuMF's
        pre-training uses it). Nothing by default."""

    def build_now(self):
        """Builds the model by scoring one unknown (user, item) pair; returns the model.

        Every variable already exists after ``__init__``; calling the model once marks it
        (and its layers) built, so Keras does not warn that an unbuilt model is saved.
        """
        if not self.built:
            self({"user_id": tf.constant([""]), "item_id": tf.constant([""])}, training=False)
        return self

    # === Seen items ===
    def remember_seen(self, train: Interactions | None):
        """Stores ``train``'s (user, item) pairs so ``recommend`` leaves them out; None forgets.

        Returns:
            The model (for chaining).
        """
        self.seen_items = (
            None
            if train is None
            else SeenItems.from_interactions(
                as_interactions(train), self.user_vocabulary, self.item_vocabulary
            )
        )
        return self

    def excluded_for(self, user_ids: tf.Tensor) -> list[np.ndarray] | None:
        if self.seen_items is None:
            return None
        return [self.seen_items.row(int(u)) - 1 for u in self.user_index(user_ids).numpy()]

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        if self.seen_items is not None:
            store["seen_offsets"] = self.seen_items.offsets
            store["seen_items"] = self.seen_items.items

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if "seen_offsets" in keys:
            self.seen_items = SeenItems(np.asarray(store["seen_offsets"]), np.asarray(store["seen_items"]))
        super().load_own_variables(_Without(store, ("seen_offsets", "seen_items")))

    # === Training logs ===
    def train_step(self, data):
        return self._true_logs(super().train_step(data))

    def test_step(self, data):
        return self._true_logs(super().test_step(data))

    def _true_logs(self, logs: dict) -> dict:
        """Drops TFRS's ``regularization_loss`` (always 0: tfrec folds its L2 penalty into
        ``loss``) and ``total_loss`` (then equal to ``loss``) from the progress bar."""
        if not self.losses and isinstance(logs, dict):
            logs = {k: v for k, v in logs.items() if k not in ("regularization_loss", "total_loss")}
        return logs

    # === Lookups and tower math (default: the model's query_tower / candidate_tower) ===
    def user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        """Raw user ids -> int64 indices (0 for unknown ids)."""
        return self.query_tower.lookup(user_ids)

    def item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        """Raw item ids -> int64 indices (0 for unknown ids)."""
        return self.candidate_tower.lookup(item_ids)

    def query_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The query tower's output for looked-up users (numeric ops only)."""
        return self.query_tower.from_index(index, training=training)

    def candidate_from_index(self, index: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The candidate tower's output for looked-up items (numeric ops only)."""
        return self.candidate_tower.from_index(index, training=training)

    def query_embedding(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.query_from_index(self.user_index(user_ids))

    def candidate_embedding(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.candidate_from_index(self.item_index(item_ids))

    def catalogue_parts(self) -> list[tf.Tensor] | None:
        """The item side as the tables it is read from, or None (it is computed).

        A dot-product model whose candidate embedding of item index ``i`` is the
        concatenation of row ``i`` of each part (a one-row part: the same for every item)
        returns its parts, so an export ranks against its own tables instead of holding a
        copy of the catalogue. A model with one part may score any way (``score_all``).
        """
        return None

    def catalogue_embeddings(self) -> tf.Tensor:
        index = np.arange(1, len(self.item_vocabulary) + 1, dtype=np.int64)
        return in_batches(self.candidate_from_index, index)

    def _score_pairs(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        return self({"user_id": users, "item_id": items}, training=False)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """The score of aligned (user, item) pairs (the towers' dot product by default)."""
        queries = self.query_from_index(self.user_index(inputs["user_id"]), training=training)
        candidates = self.candidate_from_index(self.item_index(inputs["item_id"]), training=training)
        return tf.reduce_sum(queries * candidates, axis=1)


class _Without:
    """A read-only view of a weights store without some keys."""

    def __init__(self, store, hidden: tuple[str, ...]) -> None:
        self._store, self._hidden = store, hidden

    def keys(self) -> list[str]:
        return [k for k in self._store.keys() if k not in self._hidden]

    def __getitem__(self, key: str):
        return self._store[key]

    def __contains__(self, key: str) -> bool:
        return key in self.keys()
