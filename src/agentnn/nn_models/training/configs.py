"""Trainer configs: building them from mappings, old names, checks, and params to log.

Why one module: every trainer validates its config the same way (unknown keys, wrong types and
bad values raise :class:`TrainerConfigError` before any run exists), speaks one vocabulary
(old names are mapped with a DeprecationWarning) and logs its config with one flattening.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

from agentnn.errors import AgentNNDeprecationWarning, TrainerConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

REMOVED_IN = "0.3.0"  # the release that drops the old config names (CHANGELOG.md)
SHARED_RENAMES = {  # old config name -> the one name every trainer uses now
    "lr": "learning_rate", "max_grad_norm": "grad_clip", "checkpoint_root": "checkpoint_dir",
    "hidden_sizes": "hidden_dims", "hidden": "hidden_dims", "n_classes": "num_classes",
    "min_lr": "min_learning_rate",
}

ConfigT = TypeVar("ConfigT", bound="DataclassInstance")

JSONValue: TypeAlias = Any
"""A value that came from, or goes to, JSON or YAML (config files, model specs, checkpoints,
params): arbitrary by nature, so the one place ``Any`` stands for data."""
JSONDict: TypeAlias = dict[str, JSONValue]


class ParamsLogger(Protocol):
    """What a config's params are logged into: a ``TrackedRun``, or a rank's silent stand-in."""

    def log_params(self, params: Mapping[str, JSONValue]) -> None: ...


# --- configs -----------------------------------------------------------------------------------


def config_from_mapping(config_class: type[ConfigT],
                        values: Mapping[str, JSONValue] | None) -> ConfigT:
    """Build a trainer config dataclass from a plain mapping (a YAML file, CLI overrides).

    Unknown keys raise :class:`TrainerConfigError` naming them and the keys that exist,
    instead of being ignored: a typo in a config file should not silently train the default.
    """
    values = dict(values or {})
    known = {item.name: item for item in dataclasses.fields(config_class)}
    values = accept_old_names(config_class, values, known)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TrainerConfigError(
            f"unknown {config_class.__name__} key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(known)}"
        )
    return config_class(**values)


def accept_old_names(config_class: type, values: JSONDict,
                     known: Mapping[str, dataclasses.Field[object]]) -> JSONDict:
    """Old config names mapped to the shared vocabulary, each with a DeprecationWarning.

    Why: config files written for the first trainers (``lr``, ``max_grad_norm``,
    ``checkpoint_root``, ``n_classes``...) keep working while users move to one vocabulary.
    A class lists its renames in ``RENAMED`` (old -> new) and may rewrite values whose
    meaning changed in a ``legacy(values)`` classmethod.
    """
    import warnings

    legacy = getattr(config_class, "legacy", None)
    if callable(legacy):
        values = legacy(dict(values))
    for old, new in {**SHARED_RENAMES, **getattr(config_class, "RENAMED", {})}.items():
        if old in values and old not in known and new in known:
            value = values.pop(old)
            if new in values:
                raise TrainerConfigError(f"config gives both {old!r} (deprecated) and {new!r}; "
                                         f"keep only {new!r}")
            warnings.warn(f"config key {old!r} is deprecated and removed in {REMOVED_IN}; "
                          f"use {new!r}",
                          AgentNNDeprecationWarning, stacklevel=4)
            values[new] = value
    return values


def check_config(config: ConfigT | Mapping[str, JSONValue] | None,
                 config_class: type[ConfigT]) -> ConfigT:
    """Accept a config dataclass, a mapping or None (defaults); validate and return it.

    Validation calls the config's ``validate()`` method, which uses the ``check_*`` helpers
    below, so every bad value raises before a run is created.
    """
    if config is None:
        config = config_class()
    elif isinstance(config, Mapping):
        config = config_from_mapping(config_class, config)
    elif not isinstance(config, config_class):
        raise TrainerConfigError(
            f"config must be a {config_class.__name__} or a mapping, got {type(config).__name__}"
        )
    _check_field_types(config)
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def _check_field_types(config: DataclassInstance) -> None:
    """Reject a string where a number belongs (YAML ``lr: 1e-3`` is a str), naming the key."""
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        expected = item.type if isinstance(item.type, str) else getattr(item.type, "__name__", "")
        if expected in ("int", "float") and (isinstance(value, bool) or not isinstance(
            value, (int, float)
        )):
            raise TrainerConfigError(f"{item.name} must be a number, got {value!r}")
        if expected == "int" and isinstance(value, float):
            if not value.is_integer():
                raise TrainerConfigError(f"{item.name} must be a whole number, got {value!r}")
            setattr(config, item.name, int(value))
        if expected == "float" and isinstance(value, int):
            setattr(config, item.name, float(value))
        if expected == "bool" and not isinstance(value, bool):
            raise TrainerConfigError(f"{item.name} must be true or false, got {value!r}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise :class:`TrainerConfigError` unless ``value`` is > 0 (or >= 0)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise TrainerConfigError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise TrainerConfigError(f"{name} must be {bound}, got {value!r}")


def check_range(
    name: str, value: float, low: float, high: float, *, high_open: bool = False
) -> None:
    """Raise :class:`TrainerConfigError` unless ``low <= value <= high`` (or ``< high``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise TrainerConfigError(f"{name} must be a number, got {value!r}")
    too_high = value >= high if high_open else value > high
    if value < low or too_high:
        bracket = ")" if high_open else "]"
        raise TrainerConfigError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")


def check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    """Raise :class:`TrainerConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise TrainerConfigError(
            f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}"
        )


def require_samples(n_samples: int, minimum: int, what: str = "training set") -> None:
    """Raise :class:`TrainerConfigError` for an empty or too-small data set."""
    if n_samples == 0:
        raise TrainerConfigError(f"the {what} is empty; a trainer needs at least {minimum} samples")
    if n_samples < minimum:
        raise TrainerConfigError(
            f"the {what} has {n_samples} samples; this trainer needs at least {minimum}"
        )


def require_features(actual: int, expected: int, what: str = "input features") -> None:
    """Raise :class:`TrainerConfigError` when data and model disagree about a dimension."""
    if actual != expected:
        raise TrainerConfigError(f"{what}: the data has {actual}, the model expects {expected}")


def flatten_config(config: DataclassInstance | Mapping[str, JSONValue],
                   prefix: str = "") -> JSONDict:
    """A dataclass or nested mapping as flat ``{"a.b": value}`` params, for ``log_params``.

    The tracker's own flattening (:func:`agentnn.mlflow_integration.run.validation.flatten`), so
    a config logged by a trainer and one handed to ``start_run(params=...)`` read the same in
    MLflow (a list is ``[128, 64]``, ``None`` is ``None``).
    """
    from agentnn.mlflow_integration.run.validation import flatten

    return flatten(config_dict(config), prefix)


def config_dict(config: DataclassInstance | Mapping[str, JSONValue]) -> JSONDict:
    """A config dataclass as a plain, JSON-able dict (what checkpoints and model specs store)."""
    if isinstance(config, Mapping):
        return dict(config)
    return dataclasses.asdict(config)


def log_data_params(run: ParamsLogger, data_params: Mapping[str, JSONValue]) -> None:
    """Log the data set's params (size, content hash, split, featuriser settings).

    ``data_params`` is the data set's ``params`` (``data.*`` and ``featurizer.*`` keys, named
    by the data layer); nested mappings are flattened to dotted keys. The data set's short
    name also becomes the run's ``agentnn.dataset`` tag, so runs on different data sets can be
    told apart and filtered.
    """
    from agentnn.mlflow_integration.run.datasets import DATASET_TAG, SOURCE_PARAM, dataset_name

    params = flatten_config(data_params)
    run.log_params(params)
    source = params.get(SOURCE_PARAM)
    set_tags = getattr(run, "set_tags", None)  # a rank's silent stand-in has none
    if source is not None and set_tags is not None:
        set_tags({DATASET_TAG: dataset_name(str(source))})
