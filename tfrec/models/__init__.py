"""tfrec's model zoo: Keras model builders, registered by name."""

from __future__ import annotations

from typing import Any

from tfrec.data.interactions import Interactions
from tfrec.models.bayesian_mf import BayesianMF, BayesianMFConfig
from tfrec.models.biased_mf import BiasedMF, BiasedMFConfig
from tfrec.models.capabilities import TextCandidates
from tfrec.models.content_rating import ContentRating, ContentRatingConfig
from tfrec.models.content_tower import ContentTower, ContentTowerConfig
from tfrec.models.deep_mf import DeepMF, DeepMFConfig
from tfrec.models.gmf import GMF, GMFConfig
from tfrec.models.heads import PointwiseObjective, RatingHead, RetrievalObjective
from tfrec.models.hybrid import Hybrid, HybridConfig
from tfrec.models.ials import IALS, IALSConfig
from tfrec.models.implicit_mf import ImplicitMF, ImplicitMFConfig
from tfrec.models.loading import load
from tfrec.models.mlp import MLP, MLPConfig
from tfrec.models.neumf import NeuMF, NeuMFConfig
from tfrec.models.neural_cf import NeuralCF, NeuralCFConfig
from tfrec.models.recommender import Recommender
from tfrec.models.registry import ModelEntry, entry, make_config, names
from tfrec.models.scoring import Scorer
from tfrec.models.sequential import GRU4Rec, GRU4RecConfig, SASRec, SASRecConfig
from tfrec.models.text import TextEncoder
from tfrec.models.towers import IdTower
from tfrec.models.two_tower import TwoTower, TwoTowerConfig

__all__ = [
    "BayesianMF",
    "BayesianMFConfig",
    "BiasedMF",
    "BiasedMFConfig",
    "ContentRating",
    "ContentRatingConfig",
    "ContentTower",
    "ContentTowerConfig",
    "DeepMF",
    "GRU4Rec",
    "GRU4RecConfig",
    "DeepMFConfig",
    "GMF",
    "GMFConfig",
    "Hybrid",
    "HybridConfig",
    "IALS",
    "IALSConfig",
    "IdTower",
    "ImplicitMF",
    "ImplicitMFConfig",
    "MLP",
    "MLPConfig",
    "ModelEntry",
    "PointwiseObjective",
    "RatingHead",
    "Recommender",
    "RetrievalObjective",
    "SASRec",
    "SASRecConfig",
    "Scorer",
    "TextCandidates",
    "TextEncoder",
    "TwoTower",
    "TwoTowerConfig",
    "NeuMF",
    "NeuMFConfig",
    "NeuralCF",
    "NeuralCFConfig",
    "build",
    "entry",
    "load",
    "make_config",
    "names",
]


def build(name: str, train: Interactions, **overrides: Any):
    """Builds registered model ``name`` for a training split.

    Vocabularies (and, for rating models, the mean and range of ratings) come from
    ``train`` only. Hyperparameters start from the model's config defaults.

    Args:
        name: A registered name (see :func:`names`).
        train: The training interactions (or a DataFrame with ``user_id`` / ``item_id``
            [/ ``rating`` / ``timestamp``] columns). Its (user, item) pairs are kept as
            the model's ``seen_items``, which ``recommend`` and the export leave out.
        **overrides: Config fields to change, e.g. ``embedding_dim=64``.

    Returns:
        An uncompiled ``tf.keras`` model.

    Raises:
        TfrecError: unknown name or config field, or a bad value; the message lists
            what is allowed.

    Example:
        >>> model = tfrec.models.build("biased_mf", split.train, embedding_dim=64)
    """
    from tfrec.data.interactions import as_interactions

    config = make_config(name, **overrides)
    train = as_interactions(train, "train")
    return entry(name).model_cls.from_data(train, config).remember_seen(train).build_now()
