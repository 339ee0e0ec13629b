"""tfrec's data layer: the Interactions container, loaders, splits, vocabularies, tf.data."""

from tfrec.data import streaming
from tfrec.data.interactions import Interactions, as_interactions
from tfrec.data.model_data import ModelData, RatingStats
from tfrec.data.pipeline import candidates, features, to_dataset, with_negatives
from tfrec.data.splits import (
    Split,
    cold_items,
    fold,
    leave_last_out,
    random_split,
    split,
    temporal_split,
)
from tfrec.data.synthetic import PlantedTruth
from tfrec.data.vocabulary import Vocabulary

__all__ = [
    "Interactions",
    "ModelData",
    "PlantedTruth",
    "RatingStats",
    "Split",
    "Vocabulary",
    "as_interactions",
    "candidates",
    "cold_items",
    "features",
    "fold",
    "leave_last_out",
    "random_split",
    "split",
    "streaming",
    "temporal_split",
    "to_dataset",
    "with_negatives",
]
