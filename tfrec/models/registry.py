"""The model registry (``register``, ``names``, ``entry``) and config dataclass helpers."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfrec.errors import TfrecError

TASKS = ("rating", "retrieval", "ranking")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model family member.

    Attributes:
        name: Registry name (``biased_mf``).
        model_cls: The Keras model class.
        config_cls: Its frozen hyperparameter dataclass.
        task: ``rating`` (explicit ratings), ``retrieval`` or ``ranking``.
        description: One line for ``tfrec models``.
        paper: Where the model comes from.
    """

    name: str
    model_cls: type
    config_cls: type
    task: str
    description: str
    paper: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register(
    name: str, *, config: type, task: str, description: str, paper: str = ""
) -> Callable[[type], type]:
    """Class decorator adding a model class to the registry under ``name``.

    Stamps ``registry_name``, ``task`` and ``config_class`` on the class, and registers it
    with Keras (package ``tfrec``) so saved models load.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def wrap(cls: type) -> type:
        from tfrec._keras import keras

        cls.registry_name, cls.task, cls.config_class = name, task, config
        cls = keras.utils.register_keras_serializable(package="tfrec")(cls)
        _REGISTRY[name] = ModelEntry(name, cls, config, task, description, paper)
        return cls

    return wrap


def names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name raises listing the known ones."""
    if name not in _REGISTRY:
        raise TfrecError(f"unknown model {name!r}; registered models: {names()}")
    return _REGISTRY[name]


def _coerce(value: Any, annotation: Any, field: str, owner: str) -> Any:
    """Converts CLI strings (``--set embedding_dim=64``) to the field's declared type."""
    if not isinstance(value, str):
        return value
    base = typing.get_origin(annotation) or annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if base in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        if value.lower() in ("none", "null"):
            return None
        base = typing.get_origin(args[0]) or args[0]
    try:
        if base is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if base is int:
            return int(value)
        if base is float:
            return float(value)
        if base is tuple:
            inner = typing.get_args(annotation)[0] if typing.get_args(annotation) else str
            return tuple(_coerce(v.strip(), inner, field, owner) for v in value.split(",") if v.strip())
    except ValueError as err:
        raise TfrecError(
            f"{owner}: {field}={value!r} is not a valid {getattr(base, '__name__', base)}"
        ) from err
    return value


def make_config(name: str, **overrides: Any) -> Any:
    """The default config of model ``name`` with ``overrides`` applied and validated.

    Raises:
        TfrecError: an unknown field (the message lists the allowed ones) or a bad value.
    """
    config_cls = entry(name).config_cls
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise TfrecError(f"{name}: unknown config field(s) {unknown}; allowed: {sorted(fields)}")
    values = {k: _coerce(v, hints[k], k, name) for k, v in overrides.items()}
    for key, value in values.items():
        numbers = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise TfrecError(f"{name}: {key}={value!r} is invalid: must be a finite number")
    return config_cls(**values)


def config_to_dict(config: Any) -> dict:
    """A config dataclass as plain JSON values (tuples become lists)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def config_from_dict(config_cls: type, values: dict) -> Any:
    """The inverse of :func:`config_to_dict` (lists become tuples); unknown fields raise."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise TfrecError(f"{config_cls.__name__}: unknown field(s) {unknown}; allowed: {sorted(fields)}")
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def check(config: Any, rules: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """Validates config fields: ``rules[field] = (predicate, what is allowed)``."""
    for field, (ok, allowed) in rules.items():
        value = getattr(config, field)
        if not ok(value):
            raise TfrecError(f"{type(config).__name__}.{field}={value!r} is invalid: must be {allowed}")


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def non_negative(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def boolean(value: Any) -> bool:
    return isinstance(value, bool)


def one_of(*allowed: Any) -> tuple[Callable[[Any], bool], str]:
    """A rule accepting only ``allowed`` values."""
    return (lambda value: value in allowed), f"one of {list(allowed)}"


# Rules of the training-recipe fields every config has.
TRAINING_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "learning_rate": (positive, "a number > 0"),
    "epochs": (positive_int, "a positive integer"),
    "batch_size": (positive_int, "a positive integer"),
}
