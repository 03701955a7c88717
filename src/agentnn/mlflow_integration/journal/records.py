"""The four record kinds of a journal and their JSON forms (one tuple each, cheap to encode).

A record is checked at the call site (:mod:`agentnn.mlflow_integration.run.validation`), so
what reaches a journal is already valid; decoding checks again, since a file may be damaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# --- records -------------------------------------------------------------------------------


@dataclass(slots=True)
class MetricRecord:
    """One metric point."""

    key: str
    value: float
    timestamp: int
    step: int
    KIND: ClassVar[str] = "m"

    def to_json(self) -> tuple[str, str, float, int, int]:
        return (self.KIND, self.key, self.value, self.timestamp, self.step)

    @classmethod
    def from_json(cls, item: list[object]) -> MetricRecord:
        _, key, value, timestamp, step = item
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"metric value {value!r} is not a number")
        return cls(as_text(key), float(value), as_integer(timestamp), as_integer(step))


@dataclass(slots=True)
class ParamRecord:
    """One param (immutable once logged)."""

    key: str
    value: str
    KIND: ClassVar[str] = "p"

    def to_json(self) -> tuple[str, str, str]:
        return (self.KIND, self.key, self.value)

    @classmethod
    def from_json(cls, item: list[object]) -> ParamRecord:
        _, key, value = item
        return cls(as_text(key), as_text(value))


@dataclass(slots=True)
class TagRecord:
    """One tag (the last value wins)."""

    key: str
    value: str
    KIND: ClassVar[str] = "t"

    def to_json(self) -> tuple[str, str, str]:
        return (self.KIND, self.key, self.value)

    @classmethod
    def from_json(cls, item: list[object]) -> TagRecord:
        _, key, value = item
        return cls(as_text(key), as_text(value))


@dataclass(slots=True)
class EndRecord:
    """The run ended; ``applied`` when the training process already set the status itself.

    The writer sets ``status`` and ``end_time`` only when ``applied`` is false, so they are set
    once either way.
    """

    status: str
    end_time: int
    applied: bool = False
    KIND: ClassVar[str] = "end"

    def to_json(self) -> tuple[str, str, int, bool]:
        return (self.KIND, self.status, self.end_time, self.applied)

    @classmethod
    def from_json(cls, item: list[object]) -> EndRecord:
        if len(item) == 3:  # version 1: the writer always set the status
            _, status, end_time = item
            applied: object = False
        else:
            _, status, end_time, applied = item
        return cls(as_text(status), as_integer(end_time), bool(applied))


Record = MetricRecord | ParamRecord | TagRecord | EndRecord
RECORD_TYPES: dict[str, type[Record]] = {
    kind.KIND: kind for kind in (MetricRecord, ParamRecord, TagRecord, EndRecord)
}


def decode_record(item: object) -> Record:
    """The typed record of one JSON item; ValueError when it is not one."""
    if not isinstance(item, list) or not item or not isinstance(item[0], str) or (
        item[0] not in RECORD_TYPES
    ):  # a list or an object in the kind's place is not hashable: checked first
        raise ValueError(f"not a journal record: {str(item)[:80]}")
    try:
        return RECORD_TYPES[item[0]].from_json(item)
    except (TypeError, ValueError) as error:
        raise ValueError(f"malformed {item[0]!r} record: {error}") from None


def as_text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def as_integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return value
