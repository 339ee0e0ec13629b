"""Evaluation: rating error and top-K ranking metrics under standard protocols."""

from tfrec.evaluation.baselines import ItemTransitions, Popularity, popular_items
from tfrec.evaluation.callback import RankingMetrics
from tfrec.evaluation.evaluate import (
    PROTOCOLS,
    baseline,
    check_protocol,
    compare,
    evaluate,
    interval,
    parse_protocol,
    read_ncf_negatives,
)
from tfrec.evaluation.ranking import rank_metrics
from tfrec.evaluation.rating import error_difference, mae, rmse

__all__ = [
    "PROTOCOLS",
    "baseline",
    "check_protocol",
    "compare",
    "error_difference",
    "ItemTransitions",
    "Popularity",
    "RankingMetrics",
    "popular_items",
    "evaluate",
    "interval",
    "mae",
    "parse_protocol",
    "rank_metrics",
    "read_ncf_negatives",
    "rmse",
]
