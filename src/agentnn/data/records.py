"""The interaction-log record and its JSON Lines file format.

One record a line. Loading validates every line and refuses the whole file when any line is bad,
naming the file, line number and field of the first bad ones: a training set that silently lost
records would train on a different distribution than the one the user believes they have.
Fields the format does not know are kept in ``extra`` and written back, so nothing is dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agentnn.errors import DataError

MAX_PROBLEMS_LISTED = 5  # bad lines named in one error; the rest are counted
REQUIRED_FIELDS = (
    "task_description", "chosen_agent", "success", "response_time", "confidence", "user_feedback",
)
OPTIONAL_FIELDS = ("domain", "task_type", "timestamp")
FEEDBACK_RANGE = (1.0, 5.0)


@dataclass(frozen=True)
class InteractionRecord:
    """One task an agent handled, and how it went."""

    task_description: str
    """The task as the user wrote it; the routing models learn from this text."""
    chosen_agent: str
    """Name of the agent that handled the task."""
    success: bool
    """Whether the agent solved the task."""
    response_time: float
    """Seconds the agent took; >= 0."""
    confidence: float
    """The agent's own confidence in its answer, 0..1."""
    user_feedback: float
    """The user's rating, 1..5."""
    domain: str | None = None
    """Subject area (finance, legal, …) when the log knows it."""
    task_type: str | None = None
    """Kind of work (analysis, review, …) when the log knows it."""
    timestamp: str | None = None
    """When the task was handled, ISO 8601."""
    extra: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)
    """Fields the format does not define, kept so that a load-write round trip loses nothing."""

    def to_dict(self) -> dict[str, Any]:
        """The record as one JSON object; optional fields only when set, extras last."""
        data: dict[str, Any] = {name: getattr(self, name) for name in REQUIRED_FIELDS}
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InteractionRecord:
        """Build a validated record; raises :class:`DataError` naming the first bad field."""
        problems = validate_record(data)
        if problems:
            field_name, reason = problems[0]
            raise DataError(f"field {field_name!r}: {reason}" if field_name else reason)
        return _build(data)


def validate_record(data: object) -> list[tuple[str | None, str]]:
    """Every problem of one decoded line as ``(field, reason)``; empty when the record is valid."""
    if not isinstance(data, dict):
        return [(None, f"expected a JSON object, got {type(data).__name__}")]
    problems: list[tuple[str | None, str]] = []
    for name in REQUIRED_FIELDS:
        if name not in data:
            problems.append((name, "missing"))
    for name in ("task_description", "chosen_agent"):
        if name in data and not _is_nonblank_str(data[name]):
            problems.append((name, f"must be a non-empty string, got {_show(data[name])}"))
    if "success" in data and not isinstance(data["success"], bool):
        problems.append(("success", f"must be true or false, got {_show(data['success'])}"))
    checks = (
        ("response_time", 0.0, math.inf, "a number of seconds >= 0"),
        ("confidence", 0.0, 1.0, "a number between 0 and 1"),
        ("user_feedback", *FEEDBACK_RANGE, "a number between 1 and 5"),
    )
    for name, low, high, wanted in checks:
        if name in data and not _is_number_in(data[name], low, high):
            problems.append((name, f"must be {wanted}, got {_show(data[name])}"))
    for name in ("domain", "task_type"):
        if data.get(name) is not None and not _is_nonblank_str(data[name]):
            problems.append(
                (name, f"must be a non-empty string or absent, got {_show(data[name])}")
            )
    if data.get("timestamp") is not None and not _is_iso_timestamp(data["timestamp"]):
        problems.append(
            ("timestamp", f"must be an ISO 8601 date-time, got {_show(data['timestamp'])}")
        )
    return problems


def load_interactions(path: str | os.PathLike[str]) -> list[InteractionRecord]:
    """Read a JSON Lines interaction log, every line validated.

    Blank lines are skipped (they hold no record). Any bad line makes the whole load fail with
    one :class:`DataError` listing the file, line number and field of up to
    ``MAX_PROBLEMS_LISTED`` bad lines and counting the others; nothing is dropped silently.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({error})", path=str(path)) from None
    records: list[InteractionRecord] = []
    problems: list[tuple[int, str | None, str]] = []
    bad_lines = 0
    # Split on newlines only: str.splitlines() would also split inside a description holding
    # U+2028 or U+0085, which JSON leaves unescaped.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            line_problems: list[tuple[str | None, str]] = [(None, f"not valid JSON ({error.msg})")]
        else:
            line_problems = validate_record(data)
        if line_problems:
            bad_lines += 1
            if len(problems) < MAX_PROBLEMS_LISTED:
                field_name, reason = line_problems[0]
                problems.append((line_number, field_name, reason))
            continue
        records.append(_build(data))
    if problems:
        raise DataError(_describe_problems(path, problems, bad_lines), path=str(path),
                        problems=problems)
    return records


def write_interactions(
    records: Iterable[InteractionRecord], path: str | os.PathLike[str]
) -> Path:
    """Write records as JSON Lines (UTF-8, one record a line) atomically; returns the path.

    The file is written next to its target and renamed into place, so a reader never sees half
    a log. Every record is validated first: a log this function writes always loads back.
    """
    path = Path(path)
    lines = []
    for index, record in enumerate(records):
        problems = validate_record(record.to_dict())
        if problems:
            field_name, reason = problems[0]
            raise DataError(f"record {index} cannot be written to {path}: field {field_name!r}: "
                            f"{reason}", path=str(path))
        lines.append(canonical_json(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(temporary, path)
    return path


def canonical_json(record: InteractionRecord) -> str:
    """One record as compact JSON with sorted keys: the form hashed and written."""
    return json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def records_sha256(records: Sequence[InteractionRecord]) -> str:
    """sha256 of the canonical JSON Lines form; equal records in equal order give equal hashes."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(canonical_json(record).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _build(data: dict[str, Any]) -> InteractionRecord:
    known = set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS)
    return InteractionRecord(
        task_description=data["task_description"],
        chosen_agent=data["chosen_agent"],
        success=data["success"],
        response_time=data["response_time"],
        confidence=data["confidence"],
        user_feedback=data["user_feedback"],
        domain=data.get("domain"),
        task_type=data.get("task_type"),
        timestamp=data.get("timestamp"),
        extra={key: value for key, value in data.items() if key not in known},
    )


def _describe_problems(
    path: Path, problems: list[tuple[int, str | None, str]], bad_lines: int
) -> str:
    listed = "; ".join(
        f"line {line}" + (f", field {name!r}" if name else "") + f": {reason}"
        for line, name, reason in problems
    )
    more = bad_lines - len(problems)
    noun = "record" if bad_lines == 1 else "records"
    return f"{path}: {bad_lines} bad {noun}: {listed}" + (f"; and {more} more" if more else "")


def _is_nonblank_str(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_number_in(value: object, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and low <= value <= high


def _is_iso_timestamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _show(value: object) -> str:
    """A short rendering of a bad value for an error message."""
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
