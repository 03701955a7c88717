"""A small reading of MLflow's run search syntax, so the SQLite reader can answer it itself.

Only the common subset is understood: comparisons joined by ``AND`` on metrics, params, tags
and the plain run attributes, and ``order_by`` clauses on the same. Anything else returns
None, and the caller hands the query to MLflow, which stays the judge of what is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

METRIC, PARAM, TAG, ATTRIBUTE = "metric", "param", "tag", "attribute"

ENTITY_ALIASES = {
    "metric": METRIC, "metrics": METRIC,
    "param": PARAM, "params": PARAM, "parameter": PARAM, "parameters": PARAM,
    "tag": TAG, "tags": TAG,
    "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "attr": ATTRIBUTE, "run": ATTRIBUTE,
}
# attribute name -> (column of the runs table, is numeric)
ATTRIBUTE_COLUMNS = {
    "run_id": ("run_uuid", False),
    "run_name": ("name", False),
    "status": ("status", False),
    "user_id": ("user_id", False),
    "start_time": ("start_time", True),
    "created": ("start_time", True),
    "end_time": ("end_time", True),
}
COMPARATORS = ("<=", ">=", "!=", "=", "<", ">")

_IDENTIFIER = r"(?P<entity>[A-Za-z_]+)\.(?:`(?P<bq>[^`]+)`|\"(?P<dq>[^\"]+)\"|(?P<plain>[\w.\-/]+))"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE = rf"(?:'(?P<sq>[^']*)'|\"(?P<dqv>[^\"]*)\"|(?P<num>{_NUMBER}))"
_CLAUSE = re.compile(rf"^\s*{_IDENTIFIER}\s*(?P<op><=|>=|!=|=|<|>)\s*{_VALUE}\s*$")
_ORDER = re.compile(rf"^\s*{_IDENTIFIER}(?:\s+(?P<direction>ASC|DESC))?\s*$", re.IGNORECASE)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Comparison:
    """``entity.key op value`` with the entity normalised."""

    entity: str
    key: str
    op: str
    value: str | float


@dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool


def _key(match: re.Match[str]) -> str:
    return match.group("bq") or match.group("dq") or match.group("plain")


def parse_filter(text: str | None) -> list[Comparison] | None:
    """The comparisons of ``text``; [] for no filter; None when outside the subset."""
    if text is None or not text.strip():
        return []
    comparisons: list[Comparison] = []
    for part in _AND.split(text.strip()):
        match = _CLAUSE.match(part)
        if match is None:
            return None
        entity = ENTITY_ALIASES.get(match.group("entity").lower())
        key = _key(match)
        number = match.group("num")
        string = match.group("sq") if match.group("sq") is not None else match.group("dqv")
        if entity is None:
            return None
        if entity == METRIC:
            if number is None:
                return None
            comparisons.append(Comparison(METRIC, key, match.group("op"), float(number)))
            continue
        if entity == ATTRIBUTE:
            if key not in ATTRIBUTE_COLUMNS:
                return None
            numeric = ATTRIBUTE_COLUMNS[key][1]
            if numeric and number is not None:
                comparisons.append(Comparison(ATTRIBUTE, key, match.group("op"), float(number)))
                continue
            if numeric or string is None or match.group("op") not in ("=", "!="):
                return None
            comparisons.append(Comparison(ATTRIBUTE, key, match.group("op"), string))
            continue
        if string is None or match.group("op") not in ("=", "!="):
            return None
        comparisons.append(Comparison(entity, key, match.group("op"), string))
    return comparisons


def parse_order_by(clauses: list[str] | None) -> list[OrderBy] | None:
    """The order-by clauses; None when one is outside the subset or repeats a field."""
    orders: list[OrderBy] = []
    seen: set[tuple[str, str]] = set()
    for clause in clauses or []:
        match = _ORDER.match(clause)
        if match is None:
            return None
        entity = ENTITY_ALIASES.get(match.group("entity").lower())
        key = _key(match)
        if entity is None or (entity == ATTRIBUTE and key not in ATTRIBUTE_COLUMNS):
            return None
        if (entity, key) in seen:
            return None
        seen.add((entity, key))
        direction = (match.group("direction") or "ASC").upper()
        orders.append(OrderBy(entity, key, direction == "ASC"))
    return orders


def quote_key(key: str) -> str:
    """A key as MLflow's search syntax wants it, backquoted so any character is allowed."""
    return f"`{key}`"
