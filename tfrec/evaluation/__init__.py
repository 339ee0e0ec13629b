"""Evaluation: rating error and top-K ranking metrics under standard protocols."""

from tfrec.evaluation.evaluate import evaluate
from tfrec.evaluation.rating import mae, rmse

__all__ = ["evaluate", "mae", "rmse"]
