"""Input checks run at the call site, so a bad value fails in the training process, never later.

MLflow would reject these values too, but only when the writer process sends them, long after the
line that produced them has run. The rules mirror MLflow's own (``mlflow/utils/validation.py``).
"""

from __future__ import annotations

import numbers
import re
import warnings
from collections.abc import Mapping

from agentnn.errors import InvalidKeyError, InvalidMetricError

MAX_KEY_LENGTH = 250  # MLflow's limit for metric, param and tag keys
MAX_PARAM_VALUE_LENGTH = 6000  # MLflow's limit for a param value
MAX_TAG_VALUE_LENGTH = 8000  # MLflow's limit for a tag value (REST API)
KEY_PATTERN = re.compile(r"^[/\w.\- :]*$")
KEY_RULE = "use letters, digits, '_', '-', '.', '/', ' ' and ':' only"
TRUNCATION_MARK = "…[truncated]"


def check_key(key: object) -> str:
    """Return ``key`` if MLflow accepts it as a metric, param or tag name; raise otherwise."""
    if not isinstance(key, str):
        raise InvalidKeyError(key, f"keys are strings, got {type(key).__name__}")
    if not key:
        raise InvalidKeyError(key, "keys cannot be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(key, f"{len(key)} characters, MLflow allows {MAX_KEY_LENGTH}")
    if not KEY_PATTERN.match(key):
        raise InvalidKeyError(key, KEY_RULE)
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidKeyError(key, "keys cannot start with '/' or contain '..' path segments")
    return key


def metric_value(key: str, value: object) -> float:
    """Turn a metric value into a float: numbers, numpy and one-element torch tensors; bools as 0/1.

    Strings are refused even when they hold a number: a string metric is almost always a bug.
    """
    if type(value) is float:  # the common case first: this runs for every point logged
        return value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (str, bytes)) or value is None:
        raise InvalidMetricError(key, value)
    item = getattr(value, "item", None)  # numpy scalars and arrays, torch tensors
    if callable(item):
        try:
            scalar = item()
        except (ValueError, RuntimeError):  # more than one element
            raise InvalidMetricError(key, value) from None
        if isinstance(scalar, (numbers.Real, bool)):
            return float(scalar)
    raise InvalidMetricError(key, value)


def flatten(mapping: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Flatten nested dicts into dotted keys: ``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``."""
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def stringify(value: object) -> str:
    """The text MLflow stores for a param or tag value."""
    return value if isinstance(value, str) else str(value)


def param_value(key: str, value: object) -> str:
    """A param value as MLflow stores it, truncated to MLflow's limit with a warning."""
    text = stringify(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        warnings.warn(
            f"param {key!r} is {len(text)} characters; truncated to MLflow's limit of "
            f"{MAX_PARAM_VALUE_LENGTH}",
            stacklevel=4,
        )
        text = text[: MAX_PARAM_VALUE_LENGTH - len(TRUNCATION_MARK)] + TRUNCATION_MARK
    return text


def tag_value(key: str, value: object) -> str:
    """A tag value as MLflow stores it, truncated to MLflow's limit with a warning."""
    text = stringify(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        warnings.warn(
            f"tag {key!r} is {len(text)} characters; truncated to {MAX_TAG_VALUE_LENGTH}",
            stacklevel=4,
        )
        text = text[: MAX_TAG_VALUE_LENGTH - len(TRUNCATION_MARK)] + TRUNCATION_MARK
    return text
