"""ModelData: what a model derives from its training split and stores with itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tfrec.core.ids import Ids
from tfrec.data.derived import Catalogue, DenseTable, histories, side_features, user_profiles
from tfrec.data.interactions import RATING, Interactions
from tfrec.data.sequences import user_sequences
from tfrec.data.vocabulary import Vocabulary
from tfrec.errors import DataError


@dataclass(frozen=True)
class RatingStats:
    """The training ratings' mean, range and count."""

    mean: float
    low: float
    high: float
    count: int


def _ids(values) -> Ids:
    return values if isinstance(values, Ids) else Ids(values)


def _features(features: Mapping[str, Sequence[Sequence[str]]] | None) -> dict[str, Ids]:
    return {str(k): Ids(tuple(map(str, row)) for row in rows) for k, rows in (features or {}).items()}


@dataclass(frozen=True)
class ModelData:
    """The state a model derives from data (not a hyperparameter): computed once from the
    training split, stored in the model's config, never recomputed.

    Attributes:
        users: Known user ids (most active first).
        items: Known item ids (most popular first): what ``recommend`` ranks.
        user_counts: Training interactions per user, aligned with ``users``.
        item_counts: Training interactions per item, aligned with ``items``.
        ratings: The training ratings' statistics (rating models), else None.
        user_features: ``{name: tokens per user}`` side features, aligned with ``users``.
        item_features: ``{name: tokens per item}`` side features, aligned with ``items``.
        catalogue: Content models: the items with text (training items first, then cold ones).
        user_profiles: Content models: per user, the words describing their training items.
        item_dense: Items' numeric feature vectors (training items first, then cold ones).
        history_items: Per user, the training items (1-based indices into ``items``) a
            history tower pools, heaviest first.
        history_weights: Their weights (``log1p`` of the play count, of 1 without counts).
        sequences: Sequence models: per user, their last training items in time order
            (1-based indices into ``items``).
        seed: A seed drawn at build time (from NumPy's global generator) for samplers.
    """

    users: Ids
    items: Ids
    user_counts: Ids = field(default_factory=lambda: Ids(()))
    item_counts: Ids = field(default_factory=lambda: Ids(()))
    ratings: RatingStats | None = None
    user_features: dict = field(default_factory=dict)
    item_features: dict = field(default_factory=dict)
    catalogue: Catalogue | None = None
    user_profiles: Ids | None = None
    item_dense: DenseTable | None = None
    history_items: Ids | None = None
    history_weights: Ids | None = None
    sequences: Ids | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("users", "items", "user_counts", "item_counts"):
            object.__setattr__(self, name, _ids(getattr(self, name)))
        object.__setattr__(self, "user_features", _features(self.user_features))
        object.__setattr__(self, "item_features", _features(self.item_features))
        if self.user_profiles is not None:
            object.__setattr__(self, "user_profiles", Ids(str(p) for p in self.user_profiles))
        if self.history_items is not None:
            object.__setattr__(
                self, "history_items", Ids(tuple(int(i) for i in r) for r in self.history_items)
            )
            object.__setattr__(
                self, "history_weights", Ids(tuple(float(w) for w in r) for r in self.history_weights)
            )
        if self.sequences is not None:
            object.__setattr__(self, "sequences", Ids(tuple(int(i) for i in r) for r in self.sequences))
        checks = [
            ("user_counts", self.user_counts, self.users),
            ("item_counts", self.item_counts, self.items),
        ]
        checks += [(f"user feature {k!r}", v, self.users) for k, v in self.user_features.items()]
        checks += [(f"item feature {k!r}", v, self.items) for k, v in self.item_features.items()]
        if self.user_profiles is not None:
            checks.append(("user_profiles", self.user_profiles, self.users))
        if self.sequences is not None:
            checks.append(("sequences", self.sequences, self.users))
        if self.history_items is not None:
            checks.append(("history_items", self.history_items, self.users))
            checks.append(("history_weights", self.history_weights, self.users))
        for what, values, ids in checks:
            if values and len(values) != len(ids):
                raise ValueError(f"{what} has {len(values)} entries for {len(ids)} ids")

    @classmethod
    def of(
        cls,
        train: Interactions,
        *,
        model: str,
        ratings: bool = False,
        user_features: Sequence[str] = (),
        item_features: Sequence[str] = (),
        text_tokens: int | None = None,
        profile_length: int | None = None,
        dense_features: Sequence[str] = (),
        history_length: int = 0,
        sequence_length: int = 0,
        seed: bool = False,
    ) -> ModelData:
        """Derives what model ``model`` asks for from a training split.

        Args:
            train: The training interactions.
            model: The model's name (for error messages).
            ratings: Needs explicit ratings (raises without them).
            user_features, item_features: Side-feature columns (see ``side_features``).
            text_tokens: Build the content catalogue, its text vocabulary this large.
            profile_length: Also each user's text profile of this many words.
            dense_features: Numeric item columns (names or globs) for ``item_dense``.
            history_length: Keep each user's heaviest training items, this many (0: none).
            sequence_length: Keep each user's latest training items in time order, this
                many (0: none; the data must have timestamps).
            seed: Draw a seed from NumPy's global generator.

        Raises:
            DataError: the data lacks what the model needs (ratings, a column, item text).
        """
        vocabulary = Vocabulary.from_interactions(train)
        stats = None
        if ratings:
            if not train.has_ratings:
                raise DataError(f"{model} needs explicit ratings; {train.name} has none")
            values = train.frame[RATING]
            stats = RatingStats(float(values.mean()), float(values.min()), float(values.max()), len(values))
        catalogue = None if text_tokens is None else Catalogue.from_data(train, vocabulary, text_tokens)
        profiles = None
        if profile_length is not None and catalogue is not None:
            trained = catalogue.texts[: catalogue.num_trained]
            profiles = user_profiles(train, vocabulary, trained, catalogue.text_vocabulary, profile_length)
        dense = DenseTable.from_data(train, vocabulary, dense_features) if dense_features else None
        history = histories(train, vocabulary, history_length) if history_length else (None, None)
        sequences = (
            user_sequences(train, vocabulary.users, vocabulary.items, sequence_length, model)
            if sequence_length
            else None
        )
        return cls(
            users=vocabulary.users,
            items=vocabulary.items,
            user_counts=vocabulary.user_counts,
            item_counts=vocabulary.item_counts,
            ratings=stats,
            user_features=side_features(train, vocabulary.users, user_features, "user")
            if user_features
            else {},
            item_features=side_features(train, vocabulary.items, item_features, "item")
            if item_features
            else {},
            catalogue=catalogue,
            user_profiles=profiles,
            item_dense=dense,
            history_items=history[0],
            history_weights=history[1],
            sequences=sequences,
            seed=int(np.random.randint(0, 2**31 - 1)) if seed else 0,
        )

    def to_config(self) -> dict:
        """Plain JSON values (lists, numbers, strings)."""
        return {
            "users": list(self.users),
            "items": list(self.items),
            "user_counts": list(self.user_counts),
            "item_counts": list(self.item_counts),
            "ratings": None if self.ratings is None else vars(self.ratings).copy(),
            "user_features": {k: [list(r) for r in v] for k, v in self.user_features.items()},
            "item_features": {k: [list(r) for r in v] for k, v in self.item_features.items()},
            "catalogue": None if self.catalogue is None else {
                "item_ids": list(self.catalogue.item_ids),
                "texts": list(self.catalogue.texts),
                "num_trained": self.catalogue.num_trained,
                "text_vocabulary": list(self.catalogue.text_vocabulary),
            },
            "user_profiles": None if self.user_profiles is None else list(self.user_profiles),
            "item_dense": None if self.item_dense is None else self.item_dense.to_config(),
            "history_items": None if self.history_items is None else [list(r) for r in self.history_items],
            "history_weights": None if self.history_weights is None else [list(r) for r in self.history_weights],
            "sequences": None if self.sequences is None else [list(r) for r in self.sequences],
            "seed": self.seed,
        }  # fmt: skip

    @classmethod
    def from_config(cls, config: Mapping) -> ModelData:
        """The inverse of :meth:`to_config`."""
        config = dict(config)
        if config.get("ratings") is not None:
            config["ratings"] = RatingStats(**config["ratings"])
        if config.get("catalogue") is not None:
            c = config["catalogue"]
            config["catalogue"] = Catalogue(
                tuple(c["item_ids"]), tuple(c["texts"]), int(c["num_trained"]), tuple(c["text_vocabulary"])
            )
        if config.get("item_dense") is not None:
            config["item_dense"] = DenseTable.from_config(config["item_dense"])
        return cls(**config)
