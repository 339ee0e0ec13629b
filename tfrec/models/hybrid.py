"""Hybrid retrieval: item tower = id embedding + text encoding, with id dropout for cold start."""

from __future__ import annotations

from dataclasses import dataclass

from tfrec._keras import keras
from tfrec.models.content_tower import ContentTower, ContentTowerConfig
from tfrec.models.registry import register


@dataclass(frozen=True)
class HybridConfig(ContentTowerConfig):
    """Hyperparameters of :class:`Hybrid` (those of :class:`ContentTowerConfig` plus one).

    Its defaults differ from ``content_tower``'s in temperature (0.5) and the user profile
    (on), chosen so the hybrid is not worse than the id-only ``two_tower`` on warm items.
    Seed 0, ``tfrec train hybrid --dataset D --split S --seed 0 --set ...``; warm is
    leave-last-out Recall@10 (``two_tower`` at its defaults: 0.0754 ml-latest-small, 0.0568
    CiteULike-t, bench/results/content_quality.md),
    cold is ``cold-items:0.2 --protocol cold-start`` Recall@20:

    ================================  =========  =========  ==========  ==========
    lr 5e-3 and                       warm ML    cold ML    warm CiteU  cold CiteU
    ================================  =========  =========  ==========  ==========
    temperature 0.2                   0.0508                            0.1738
    temperature 0.5                   0.0705     0.1507
    temperature 1.0                   0.0705
    temperature 0.5, batch 1024       0.0656
    temperature 0.5, id_dropout 0.1   0.0639
    temperature 0.5 + profile (def.)  0.0803     0.1536     0.1267      0.1720
    ================================  =========  =========  ==========  ==========

    The earlier defaults (temperature 0.2, lr 2e-3, no per-word bias, no profile) gave
    0.0639 / 0.1363 warm and 0.0953 / 0.1334 cold. The profile doubles training time
    (each query encodes a text too); ``--set user_profile=false`` turns it off.

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
