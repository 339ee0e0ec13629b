"""Hyperparameter search on a validation part of the training data (Optuna, TPE sampler,
median pruning of bad trials), resumable from its study file."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tfrec._keras import keras
from tfrec.data.interactions import ITEM, RATING, TIMESTAMP, USER, WEIGHT, Interactions, as_interactions
from tfrec.data.splits import split
from tfrec.errors import TfrecError
from tfrec.models.registry import config_to_dict, entry, make_config

# The search range of a config field, by field name: ("log", low, high), ("float", low,
# high), ("int", low, high), ("choice", values) or ("scale", low, high): an int from
# low x to high x the model's default (epochs).
RANGES: dict[str, tuple] = {
    "learning_rate": ("log", 1e-4, 3e-2),
    "embedding_dim": ("choice", (16, 32, 64, 128)),
    "factors": ("choice", (8, 16, 32, 64)),
    "l2": ("log", 1e-6, 1.0),
    "l2_factors": ("log", 1e-3, 1.0),
    "l2_bias": ("log", 1e-5, 1.0),
    "regularization": ("log", 1e-4, 1.0),
    "unobserved_weight": ("log", 1e-3, 1.0),
    "temperature": ("log", 0.05, 2.0),
    "dropout": ("float", 0.0, 0.5),
    "text_dropout": ("float", 0.0, 0.5),
    "id_dropout": ("float", 0.0, 0.6),
    "num_negatives": ("int", 1, 8),
    "batch_size": ("choice", (128, 256, 512, 1024)),
    "epochs": ("scale", 0.5, 2.0),
}


def search_space(name: str, fixed: dict[str, Any] | None = None) -> dict[str, tuple]:
    """The fields of model ``name``'s config that are searched (those with a range in
    :data:`RANGES`, less the ``fixed`` ones), with their ranges."""
    config = entry(name).config_cls()
    space = {}
    for field in dataclasses.fields(config):
        if field.name in RANGES and field.name not in (fixed or {}):
            rule = RANGES[field.name]
            if rule[0] == "scale":
                default = getattr(config, field.name)
                rule = ("int", max(1, int(default * rule[1])), max(2, int(default * rule[2])))
            space[field.name] = rule
    return space


def _suggest(trial, field: str, rule: tuple):
    kind = rule[0]
    if kind == "log":
        return trial.suggest_float(field, rule[1], rule[2], log=True)
    if kind == "float":
        return trial.suggest_float(field, rule[1], rule[2])
    if kind == "int":
        return trial.suggest_int(field, rule[1], rule[2])
    return trial.suggest_categorical(field, list(rule[1]))


@dataclass
class TuneResult:
    """What :func:`tune` found: the best trial's config overrides and validation figure."""

    model: str
    monitor: str
    best_value: float
    best_overrides: dict[str, Any]
    best_config: dict[str, Any]
    trials: list[dict[str, Any]]


def tune(
    name: str,
    train_data: Interactions,
    *,
    validation: str | None = None,
    trials: int = 20,
    seed: int = 0,
    storage: str | Path | None = None,
    verbose: int = 0,
    **fixed: Any,
) -> TuneResult:
    """Searches model ``name``'s config on a validation part of ``train_data``.

    ``train_data`` is split again by ``validation`` (default ``random:0.1`` for rating
    models, ``leave-last-out`` otherwise); each trial trains on the rest and is scored on
    the validation part each epoch (``val_rmse``, minimised, or ``val_recall@10``,
    maximised); Optuna's median pruner stops trials that fall behind. The test split is
    never seen: pass the training part of your split.

    Args:
        name: Registered model name.
        train_data: The training interactions (the test split kept aside).
        validation: The split spec that makes the validation part.
        trials: Trials to run (more are added to a resumed study).
        seed: Seeds the sampler, the validation split and every trial's training.
        storage: A study file (SQLite), used by one process at a time; rerunning with it
            resumes the search when the model, data, validation, seed and fixed fields are
            the same (refused otherwise, naming what differs). Trials a killed process left
            running are marked failed, and the sampler continues past the trials run.
        verbose: Keras ``fit`` verbosity of each trial.
        **fixed: Config fields held fixed (not searched).

    Returns:
        A :class:`TuneResult`; ``best_config`` is the full config, ready for ``tfrec train --config``.

    Raises:
        TfrecError: unknown model or field, no field to search, or a study file that is
            unreadable or holds another study.

    Example:
        >>> result = tfrec.tuning.tune("implicit_mf", split.train, trials=10)
    """
    import optuna

    from tfrec.training import train

    train_data = as_interactions(train_data, "train_data")
    make_config(name, **fixed)  # unknown fields and bad values fail before any trial
    task = entry(name).task
    space = search_space(name, fixed)
    if not space:
        raise TfrecError(f"tune(): {name} has no field left to search (all fixed)")
    validation = validation or ("random:0.1" if task == "rating" else "leave-last-out")
    parts = split(train_data, validation, seed=seed)
    monitor, direction = ("val_rmse", "minimize") if task == "rating" else ("val_recall@10", "maximize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study(name, direction, storage, study_key(name, train_data, validation, seed, fixed))

    def objective(trial) -> float:
        overrides = {field: _suggest(trial, field, rule) for field, rule in space.items()}
        try:
            make_config(name, **fixed, **overrides)
        except TfrecError as err:  # e.g. a combination the config refuses
            raise optuna.TrialPruned(str(err)) from err
        try:
            result = train(name, parts.train, seed=seed, verbose=verbose, validation=parts.test,
                           callbacks=[_Report(trial, monitor)], **fixed, **overrides)  # fmt: skip
        except TfrecError as err:  # e.g. the loss diverged at these settings
            raise optuna.TrialPruned(str(err)) from err
        value = result.history.get(monitor, [math.nan])[-1]
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"{monitor} is {value}")
        return value

    study.optimize(objective, n_trials=trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise TfrecError(f"tune(): no trial of {name} completed")
    best = study.best_trial
    config = make_config(name, **fixed, **best.params)
    return TuneResult(
        model=name,
        monitor=monitor,
        best_value=float(best.value),
        best_overrides={**fixed, **best.params},
        best_config=config_to_dict(config),
        trials=[{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
                for t in study.trials],  # fmt: skip
    )


def study_key(name: str, train_data: Interactions, validation: str, seed: int, fixed: dict[str, Any]) -> dict:
    """What defines a study: the model, the training data (rows and a hash of their
    values), the validation split, the seed and the fixed fields. A study file answers only
    the study it was started for."""
    frame = train_data.frame[[c for c in (USER, ITEM, RATING, TIMESTAMP, WEIGHT) if c in train_data.frame]]
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    return {
        "model": name,
        "data": f"{len(frame):,} rows, sha256 {digest[:16]}",
        "validation": validation,
        "seed": seed,
        "fixed": {k: str(v) for k, v in sorted(fixed.items())},
    }


def _study(name: str, direction: str, storage: str | Path | None, key: dict):
    """Creates the study, or resumes the one in ``storage`` when it was started for the
    same ``key`` (refused otherwise, naming what differs). On resume, trials left RUNNING
    by a process that died are marked failed, and the sampler is seeded past the trials
    already run, so it continues rather than repeats them."""
    import optuna

    url = None if storage is None else f"sqlite:///{Path(storage).resolve()}"
    try:
        backend = None if url is None else optuna.storages.RDBStorage(url)
        study = optuna.create_study(
            study_name=name, direction=direction, storage=backend, load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        )  # fmt: skip
        trials = study.get_trials(deepcopy=False)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy and Optuna raise many types for a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TfrecError(
            f"tune(): {storage} is not a readable study file ({first}); delete it or tune into another folder"
        ) from err
    stored = study.user_attrs.get("tfrec_key")
    if trials and stored != key:
        if stored is None:
            what = "a study whose settings were not recorded"
        else:
            what = "a study with other " + ", ".join(
                f"{k} ({stored.get(k)!r}, now {key[k]!r})" for k in key if stored.get(k) != key[k]
            )
        raise TfrecError(
            f"tune(): {storage} holds {what}; rerun with the same data and settings to resume it, or tune into "
            "another folder"
        )
    if stored is None:
        study.set_user_attr("tfrec_key", key)
    stale = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    if stale:  # a study file serves one process at a time: these trials' process died
        study_id = backend.get_study_id_from_name(name)
        for trial in stale:
            trial_id = backend.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            backend.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    study.sampler = optuna.samplers.TPESampler(seed=(key["seed"] + len(trials)) % 2**32)
    return study


class _Report(keras.callbacks.Callback):
    """Reports each epoch's validation figure to the Optuna trial; prunes it when asked."""

    def __init__(self, trial, monitor: str) -> None:
        super().__init__()
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import optuna

        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch + 1}: {self.monitor} {value:.4f}")
