"""Hybrid retrieval: item tower = id embedding + text encoding, with id dropout for cold start."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import keras
from tfrec.models.content_tower import ContentTower, ContentTowerConfig
from tfrec.models.registry import register


@dataclass(frozen=True)
class HybridConfig(ContentTowerConfig):
    """Hyperparameters of :class:`Hybrid` (those of :class:`ContentTowerConfig` plus one).

    Attributes:
        id_dropout: Share of training examples whose item id embedding is dropped, so
            the text alone must carry them (what cold items rely on).
    """

    id_dropout: float = 0.3
    temperature: float = 0.5
    user_profile: bool = True

    def rules(self) -> dict:
        return {
            **super().rules(),
            "id_dropout": (lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "a number in [0, 1)"),
        }


@register(
    "hybrid",
    config=HybridConfig,
    task="retrieval",
    description="Hybrid retrieval: item id embedding + text encoding, id dropout; cold items fall back to text",
    paper="Volkovs et al., DropoutNet, NeurIPS 2017 (id dropout); Yi et al. 2019",
)
@keras.utils.register_keras_serializable(package="tfrec")
class Hybrid(ContentTower):
    """``score(user, item) = <e_u, e_i + text_encoder(text_i)>``, ``e_i`` dropped at random in training.

    A warm item has both parts; a cold or unknown item's id goes to the OOV row, held at
    zero, so it is ranked by its text alone, which id dropout trained the model to do.

    Example:
        >>> model = tfrec.models.build("hybrid", split.train, id_dropout=0.5)
    """

    uses_item_ids = True
