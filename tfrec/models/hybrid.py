"""Hybrid retrieval: item tower = id embedding + text encoding, with id dropout for cold start."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec.models.content_tower import ContentTower, ContentTowerConfig
from tfrec.models.registry import register


@dataclass(frozen=True)
class HybridConfig(ContentTowerConfig):
    """Hyperparameters of :class:`Hybrid`: a content tower with the item-id embedding on.

    The fields of :class:`ContentTowerConfig` with the item-id embedding on
    (``item_ids``, ``id_dropout`` 0.3), 64-wide embeddings and the user profile on
    (defaults: bench/TUNING.md).
    """

    embedding_dim: int = 64
    item_ids: bool = True
    id_dropout: float = 0.3
    user_profile: bool = True


@register(
    "hybrid",
    config=HybridConfig,
    task="retrieval",
    description="Hybrid retrieval: item id embedding + text encoding, id dropout; cold items fall back to text",
    paper="Volkovs et al., DropoutNet, NeurIPS 2017 (id dropout); Yi et al. 2019",
)
class Hybrid(ContentTower):
    """``score(user, item) = <e_u, e_i + text_encoder(text_i)>``, ``e_i`` dropped at random in training.

    A warm item has both parts; a cold or unknown item's id goes to the OOV row, held at
    zero, so it is ranked by its text alone, which id dropout trained the model to do.
    It is the content tower with ``item_ids`` on by default, registered under its own
    name and defaults.

    Example:
        >>> model = tfrec.models.build("hybrid", split.train, id_dropout=0.5)
    """
