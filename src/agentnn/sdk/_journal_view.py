"""Metric points a run's local journal holds that the store does not have yet.

``agentnn model watch`` shows them so a live view is never a flush behind the training loop.
Only the journal module's public read functions are used; a journal that cannot be read is
skipped (watching is best effort and must never disturb the writer, which owns the files).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agentnn.errors import AgentNNError
from agentnn.mlflow_integration.journal.format import (
    JOURNAL_SUFFIX,
    REJECTED_SUFFIX,
    Cursor,
    cursor_path,
    read_chunks,
    read_header,
)
from agentnn.sdk._records import MetricPoint

logger = logging.getLogger(__name__)

METRIC_RECORD = "m"  # the kind of a metric point record


def run_journals(journal_dir: Path, run_id: str) -> list[Path]:
    """The run's journals in this folder, oldest first (one per start or resume of the run)."""
    if not journal_dir.is_dir():
        return []
    found = journal_dir.glob(f"{run_id}.*{JOURNAL_SUFFIX}")
    return sorted(j for j in found if not j.name.endswith(REJECTED_SUFFIX))


def _metric(record: Any) -> tuple[str, MetricPoint] | None:  # Any: a record or a JSON list
    """(key, point) of a metric record; None for params, tags and the end record.

    Records are the journal's typed records (``MetricRecord``: key, value, timestamp, step);
    the JSON list of the first journal format, ``["m", key, value, timestamp, step]``, too.
    """
    if getattr(record, "KIND", None) == METRIC_RECORD:
        return record.key, MetricPoint(int(record.step), float(record.value),
                                       int(record.timestamp))
    if isinstance(record, (list, tuple)) and record and record[0] == METRIC_RECORD:
        _, key, value, timestamp, step = record[:5]
        return str(key), MetricPoint(int(step), float(value), int(timestamp))
    return None


def unsent_points(
    journal_dir: Path, run_id: str
) -> tuple[dict[str, list[MetricPoint]], Path | None]:
    """Per metric key, the points past the writer's cursor; and the newest journal read."""
    pending: dict[str, list[MetricPoint]] = {}
    journals = run_journals(journal_dir, run_id)
    for journal in journals:
        try:
            _, first_chunk = read_header(journal)
            cursor = Cursor.load(cursor_path(journal))
            offset, skip = (cursor.offset, cursor.index) if cursor else (first_chunk, 0)
            for start, _, records in read_chunks(journal, max(offset, first_chunk)):
                for record in records[skip if start == offset else 0:]:
                    metric = _metric(record)
                    if metric is not None:
                        pending.setdefault(metric[0], []).append(metric[1])
        except (AgentNNError, OSError, ValueError, TypeError) as error:
            logger.debug("watch: skipping journal %s (%s)", journal, error)
    return pending, (journals[-1] if journals else None)
