"""One journal into the store: records grouped into batches, sent, and confirmed in the cursor.

A batch holds what one call may carry (MLflow's ``log_batch`` limits, or many more records on
the native path); a record leaves the journal's unsent part only once the store has confirmed
it, so a crash between send and cursor update resends, and a resend never duplicates a point.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, cast

from agentnn.errors import JournalError
from agentnn.mlflow_integration.journal.buffered import Handoff
from agentnn.mlflow_integration.journal.format import (
    Chunk,
    Cursor,
    cursor_path,
    read_header,
    rejected_path,
    scan_chunks,
    set_aside,
)
from agentnn.mlflow_integration.journal.records import (
    EndRecord,
    MetricRecord,
    ParamRecord,
    Record,
    TagRecord,
)
from agentnn.mlflow_integration.store.classify import keep_for_later

if TYPE_CHECKING:
    from mlflow import MlflowClient


KILLED = "KILLED"
# MLflow's log_batch limits.
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
# Records sent in one call (one transaction on the native path): fewer commits, each an fsync,
# against more to send again after a crash and a longer hold on SQLite's write lock.
RECORDS_PER_CALL = 20_000
# --- batching ------------------------------------------------------------------------------


@dataclass
class Batch:
    """Records grouped within MLflow's log_batch limits, as the journal's records.

    The native path reads their fields as they are; MLflow entities are built only when a
    batch goes through ``log_batch`` (see :mod:`agentnn.mlflow_integration.writer.sql_bulk`).
    """

    metrics: list[MetricRecord] = field(default_factory=list)
    params: list[ParamRecord] = field(default_factory=list)
    tags: list[TagRecord] = field(default_factory=list)

    def fits(self, record: Record) -> bool:
        total = len(self.metrics) + len(self.params) + len(self.tags)
        if total >= MAX_ENTITIES:
            return False
        if type(record) is MetricRecord:
            return len(self.metrics) < MAX_METRICS
        if type(record) is ParamRecord:
            return len(self.params) < MAX_PARAMS
        return len(self.tags) < MAX_TAGS

    def add(self, record: MetricRecord | ParamRecord | TagRecord) -> None:
        if type(record) is MetricRecord:
            self.metrics.append(record)
        elif type(record) is ParamRecord:
            self.params.append(record)
        else:
            self.tags.append(cast(TagRecord, record))

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


def is_retryable(error: Exception) -> bool:
    """Errors that mean "not now" (the store did not answer, or refused these credentials),
    as opposed to "the store said no to these records".

    401 and 403 keep the records in the journal: credentials and permissions get fixed, and
    ``agentnn model sync`` then sends them; setting them aside would lose them for good. The
    rule is :func:`agentnn.mlflow_integration.store.classify.keep_for_later`.
    """
    return keep_for_later(error)


def _batches_up_to_end(
    records: list[Record], index: int, last_time: int
) -> tuple[list[tuple[Batch, int, int]], int, EndRecord | None, int]:
    """log_batch-sized batches from ``index`` up to the next end record.

    Returns ``(batch, first, stop)`` per batch, where the records stop (after the end record,
    when there is one), that end record, and the latest metric time seen. A stretch of metric
    points only (nearly every chunk) is cut into slices without looking at each record twice.
    """
    stop = next((i for i in range(index, len(records)) if type(records[i]) is EndRecord),
                len(records))
    terminal = cast(EndRecord, records[stop]) if stop < len(records) else None
    # the records before the end record: never an end record (casts, not checks: a hot path)
    segment = cast("list[MetricRecord | ParamRecord | TagRecord]", records[index:stop])
    batches: list[tuple[Batch, int, int]] = []
    if all(type(record) is MetricRecord for record in segment):
        points = cast("list[MetricRecord]", segment)
        size = min(MAX_METRICS, MAX_ENTITIES)
        for first in range(0, len(points), size):
            batches.append((Batch(metrics=points[first:first + size]), index + first,
                            index + min(first + size, len(points))))
        if points:
            last_time = max(last_time, max(record.timestamp for record in points))
    else:
        batch, first = Batch(), index
        for position, record in enumerate(segment, start=index):
            if not batch.fits(record):
                batches.append((batch, first, position))
                batch, first = Batch(), position
            batch.add(record)
            if type(record) is MetricRecord and record.timestamp > last_time:
                last_time = record.timestamp
        if batch:
            batches.append((batch, first, stop))
    return batches, stop + (terminal is not None), terminal, last_time


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc).isoformat(
        timespec="seconds"
    )


class JournalForwarder:
    """Sends one run's journal, from its cursor on, to the store of its header.

    Raises (from the constructor): HeaderIncomplete, DamagedJournalError.
    """

    def __init__(
        self,
        journal: Path,
        client_for: Callable[[str], MlflowClient],
        report: Callable[[str], None] = print,
        log: Callable[[str], None] | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.journal = journal
        self._handoff = handoff
        self.cursor_file = cursor_path(journal)
        self.header, first_chunk = read_header(journal)
        self.run_id = self.header.run_id
        self.tracking_uri = self.header.tracking_uri
        self.ended = False
        self._report = report
        self._log = log  # the store path's own lines (which path, and why): the writer's log
        try:
            self.cursor = Cursor.load(self.cursor_file) or Cursor(first_chunk, 0)
        except JournalError as error:
            # Sending again from the start is safe: the store ignores points and params it has.
            report(f"{error}; the journal is sent again from its start")
            self.cursor = Cursor(first_chunk, 0)
        self.waiting_on_tail = False  # a torn last line whose training process still runs
        self.sent = 0  # records the store confirmed
        self._client_for = client_for

    def forward(self) -> int:
        """Send everything complete in the journal; returns how much happened (0: idle).

        The cursor is saved after every accepted call (consecutive chunks of up to
        :data:`RECORDS_PER_CALL` records go in one), so a crash re-sends at most one call's
        records, which the store ignores (identical metric points and params are deduplicated,
        tags are set to the same values again).
        """
        # Asked before reading: once the process is gone, everything it wrote is in the file.
        gone = not self.ended and self.header.process_gone()
        size = self.journal.stat().st_size
        if size == self.cursor.offset and not gone:
            return self._finish_if_done(size)
        client = self._client_for(self.tracking_uri)
        per_call = RECORDS_PER_CALL * self._requests_in_flight()
        done = 0
        group: list[Chunk] = []  # whole chunks without an end record, sent in one call
        for chunk in scan_chunks(self.journal, self.cursor.offset, self.header.format,
                                 self._handoff):
            grouped = chunk.damage is None and not any(
                type(r) is EndRecord for r in chunk.records)
            if grouped:
                group.append(chunk)
                if sum(len(member.records) for member in group) < per_call:
                    continue
            done += self._forward_group(client, group)
            group = []
            if grouped:
                continue
            if chunk.damage is not None:
                done += self._set_aside(chunk.start, chunk.end, chunk.damage)
            else:
                done += self._forward_chunk(client, chunk.start, chunk.end, chunk.records)
        done += self._forward_group(client, group)
        size = self.journal.stat().st_size
        torn = self.cursor.index == 0 and size > self.cursor.offset
        self.waiting_on_tail = torn and not gone
        if torn and gone:
            done += self._set_aside(self.cursor.offset, size, "the last line was cut off")
        if gone and not self.ended and self.cursor.offset == size:
            done += self._mark_killed(client)
        return done + self._finish_if_done(size)

    def _requests_in_flight(self) -> int:
        """How many requests of :data:`RECORDS_PER_CALL` records one call may carry: several
        to a server's agentnn app (sent at once, see ``app_ingest``) or to a PostgreSQL store
        (transactions at once, see ``sql_bulk``), else one."""
        from agentnn.mlflow_integration.writer import app_ingest, sql_bulk

        try:
            if app_ingest.takes(self.tracking_uri, report=self._log):
                return app_ingest.IN_FLIGHT
        except Exception:  # the store did not answer the question: the send says so
            return 1
        return sql_bulk.in_flight(self.tracking_uri)

    def _forward_group(self, client: MlflowClient, group: list[Chunk]) -> int:
        """Send consecutive chunks (none with an end record) in one call: one transaction and
        one commit on the native path, where the commit is a good part of the cost."""
        if len(group) <= 1:
            return sum(self._forward_chunk(client, chunk.start, chunk.end, chunk.records)
                       for chunk in group)
        first = group[0]
        index = self.cursor.index if first.start == self.cursor.offset else 0
        records = first.records[index:] + [r for chunk in group[1:] for r in chunk.records]
        # No end record inside, so the cursor only ever lands at the end of the group.
        return self._forward_chunk(client, first.start, group[-1].end, records, index=0)

    def _forward_chunk(
        self, client: MlflowClient, start: int, end: int, records: list[Record],
        index: int | None = None,
    ) -> int:
        """Send a chunk's records (from the cursor on, or from ``index``) up to each end record
        in one call."""
        if index is None:
            index = self.cursor.index if start == self.cursor.offset else 0
        sent = 0
        last_time = self.cursor.last_time
        while index < len(records):
            batches, stop, terminal, last_time = _batches_up_to_end(records, index, last_time)
            if batches:
                self._send_all(client, batches, records)
            if terminal is not None:
                self._terminate(client, terminal)
            sent += stop - index
            self.sent += stop - index
            index = stop
            self.cursor = (
                Cursor(start, index, last_time) if index < len(records)
                else Cursor(end, 0, last_time)
            )
            self.cursor.save(self.cursor_file)
        return sent

    def _finish_if_done(self, size: int) -> int:
        """Remove a journal whose run ended and whose every record the store has."""
        if self.ended and self.cursor.offset == size:
            self.journal.unlink()
            self.cursor_file.unlink(missing_ok=True)
            if self._handoff is not None:
                self._handoff.forget(self.journal)
            return 1
        return 0

    def _set_aside(self, start: int, end: int, reason: str) -> int:
        """Move bytes ``start:end`` to ``<journal>.damaged`` and go on after them."""
        with self.journal.open("rb") as handle:
            handle.seek(start)
            data = handle.read(end - start)
        damaged = set_aside(self.journal, data)
        self.cursor = Cursor(end, 0, self.cursor.last_time)
        self.cursor.save(self.cursor_file)
        self._report(
            f"journal {self.journal}: damaged chunk at byte {start} ({reason}); set aside in "
            f"{damaged}, the rest of the journal is sent"
        )
        return 1

    def _mark_killed(self, client: MlflowClient) -> int:
        """The training process is gone and the run never ended: set it KILLED."""
        end_time = self.cursor.last_time or self.header.created
        try:
            status = client.get_run(self.run_id).info.status
            if status == "RUNNING":  # else its process ended it before writing the end record
                client.set_terminated(self.run_id, KILLED, end_time=end_time)
        except Exception as error:
            if is_retryable(error):
                raise
            self._report(f"run {self.run_id}: its training process is gone, but the store "
                         f"refused to end the run ({str(error).splitlines()[0]}); left as it is")
            self.ended = True
            return 1
        self.ended = True
        if status != "RUNNING":
            return 1
        self._report(
            f"run {self.run_id}: its training process ({self.header.describe_process()}) is "
            f"gone and the run never ended; set KILLED, ended at {_iso(end_time)} "
            "(its last record)"
        )
        return 1

    def _terminate(self, client: MlflowClient, terminal: EndRecord) -> None:
        self.ended = True
        if terminal.applied:  # the training process set the status itself
            return
        try:
            client.set_terminated(self.run_id, terminal.status, end_time=terminal.end_time)
        except Exception as error:
            if is_retryable(error):
                self.ended = False
                raise
            self._reject([terminal], error)

    def _reject(self, records: list[Record], error: Exception) -> None:
        """Keep records the store refused for good beside the journal, and go on."""
        with rejected_path(self.journal).open("a") as handle:
            handle.write(json.dumps({"error": str(error)[:2000],
                                     "records": [record.to_json() for record in records]}) + "\n")

    def _send_all(
        self, client: MlflowClient, batches: list[tuple[Batch, int, int]], records: list[Record]
    ) -> None:
        """Send batches in one call (one transaction on the native path).

        A server with the agentnn app takes them all in one request (see ``app_ingest``).
        When the store refuses the call, the batches go again one by one, so only a refused
        batch is set aside (sending a batch again is harmless: see :meth:`forward`).
        """
        from agentnn.mlflow_integration.writer import app_ingest, sql_bulk

        if app_ingest.takes(self.tracking_uri, report=self._log):
            try:
                app_ingest.send(self.tracking_uri, self.run_id,
                                records[batches[0][1]:batches[-1][2]])
                return
            except Exception as error:
                if is_retryable(error):
                    raise
        elif len(batches) > 1:
            try:
                sql_bulk.log_batches(client, self.tracking_uri, report=self._log, batches=[
                    sql_bulk.RunBatch(self.run_id, batch.metrics, batch.params, batch.tags)
                    for batch, _, _ in batches
                ])
                return
            except Exception as error:
                if is_retryable(error):
                    raise
        for batch, first, stop in batches:
            self._send(client, batch, records[first:stop])

    def _send(self, client: MlflowClient, batch: Batch, records: list[Record]) -> None:
        from agentnn.mlflow_integration.writer import sql_bulk

        try:
            # SQL stores: the native bulk path; anywhere else, or on any doubt, log_batch.
            sql_bulk.log_batch(client, self.tracking_uri, self.run_id, batch.metrics,
                               batch.params, batch.tags, report=self._log)
        except Exception as error:
            if is_retryable(error):
                raise
            self._reject(records, error)
