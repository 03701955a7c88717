"""The writer: forwards run journals to the MLflow store, natively or with ``log_batch``.

One writer serves every journal in a folder (a file lock makes it the only one). It runs as a
thread of the training process that owns the folder (see
:mod:`agentnn.mlflow_integration.writer_process`) or as a process of its own at the lowest
priority (started when the thread cannot serve, to take over at the training process's exit, or
by hand). It retries with back-off while the store does not answer, and a writer process exits
once its parent process is gone and every journal is sent, or after a long idle spell.

What it does with a journal that is not simply "records to send" (each said in one line):

- a damaged chunk (checksum, JSON or a record does not check out) is set aside, whole, in
  ``<journal>.damaged``; the chunks around it are still sent;
- a torn last line is left for later while the journal's training process lives (it is still
  being written) and set aside once that process is gone (a crash cut it);
- a broken header sets the whole journal aside, named;
- a journal whose training process is gone without an end record: its run is set KILLED, with
  the time of its last metric point as end time.

A pass that sends nothing is idle: the writer sleeps or (``--once``) returns, so it never spins.
The writer (thread or process) is owned by
:class:`agentnn.mlflow_integration.writer_process.WriterProcess`.

Start by hand (what ``agentnn model sync`` does, in the foreground)::

    python -m agentnn.mlflow_integration.writer <journal_dir> [--once]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentnn import heap
from agentnn.errors import DamagedJournalError, JournalError
from agentnn.mlflow_integration.journal import (
    HEADER_GRACE,
    Chunk,
    Cursor,
    EndRecord,
    Handoff,
    HeaderIncomplete,
    MetricRecord,
    ParamRecord,
    Record,
    TagRecord,
    TrainingProcess,
    cursor_path,
    list_journals,
    pid_alive,
    read_header,
    rejected_path,
    scan_chunks,
    set_aside,
    set_aside_journal,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

LOCK_NAME = "writer.lock"
LOG_NAME = "writer.log"
WRITER_NICENESS = 19  # the lowest priority: training always comes first
POLL_INTERVAL = 0.2  # seconds between scans when there is nothing to send
# Seconds between looks at the folder for another process's new journal, while a writer thread
# that scans rarely waits: each look wakes a thread of the training process (about 0.2-0.4 ms
# of CPU here, with PyTorch keeping the caches), and another process's run needs only its
# first look; from then on its journal is scanned every POLL_INTERVAL.
FOLDER_WATCH_INTERVAL = 1.0
# Sent by the training process that started the writer when a run ends, so the last chunk is
# sent at once rather than after the rest of an idle sleep (the drain a user waits for). The
# writer blocks it before it takes the folder's lock and waits for it with sigtimedwait.
WAKE_SIGNAL = signal.SIGUSR1
IDLE_EXIT = 600.0  # seconds without work after which a writer whose parent lives exits anyway
ORPHAN_RETRY_LIMIT = 600.0  # seconds an orphaned writer keeps retrying an unanswering store
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
KILLED = "KILLED"

# MLflow's log_batch limits.
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
# Records sent in one call (one transaction on the native path): fewer commits, each an fsync,
# against more to send again after a crash and a longer hold on SQLite's write lock.
RECORDS_PER_CALL = 20_000


# --- the lock that makes one writer per journal folder -------------------------------------


def writer_running(journal_dir: Path) -> bool:
    """True when a writer holds the folder's lock."""
    lock = journal_dir / LOCK_NAME
    if not lock.exists():
        return False
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


# --- batching ------------------------------------------------------------------------------


@dataclass
class Batch:
    """Records grouped within MLflow's log_batch limits, as the journal's records.

    The native path reads their fields as they are; MLflow entities are built only when a
    batch goes through ``log_batch`` (see :mod:`agentnn.mlflow_integration.sql_bulk`).
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
            self.tags.append(record)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


def is_retryable(error: Exception) -> bool:
    """Errors that mean "not now" (the store did not answer, or refused these credentials),
    as opposed to "the store said no to these records".

    401 and 403 keep the records in the journal: credentials and permissions get fixed, and
    ``agentnn model sync`` then sends them; setting them aside would lose them for good.
    """
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        code = error.get_http_status_code()
        return code >= 500 or code in (401, 403, 429)
    return True  # connection errors, timeouts, locked databases


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
    terminal = records[stop] if stop < len(records) else None
    segment = records[index:stop]
    batches: list[tuple[Batch, int, int]] = []
    if all(type(record) is MetricRecord for record in segment):
        size = min(MAX_METRICS, MAX_ENTITIES)
        for first in range(0, len(segment), size):
            batches.append((Batch(metrics=segment[first:first + size]), index + first,
                            index + min(first + size, len(segment))))
        if segment:
            last_time = max(last_time, max(record.timestamp for record in segment))
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
        done = 0
        group: list[Chunk] = []  # whole chunks without an end record, sent in one call
        for chunk in scan_chunks(self.journal, self.cursor.offset, self.header.format,
                                 self._handoff):
            if chunk.damage is None and not any(type(r) is EndRecord for r in chunk.records):
                group.append(chunk)
                if sum(len(member.records) for member in group) < RECORDS_PER_CALL:
                    continue
                chunk = None
            done += self._forward_group(client, group)
            group = []
            if chunk is None:
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

        When the store refuses the call, the batches go again one by one, so only a refused
        batch is set aside (sending a batch again is harmless: see :meth:`forward`).
        """
        from agentnn.mlflow_integration import sql_bulk

        if len(batches) > 1:
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
        from agentnn.mlflow_integration import sql_bulk

        try:
            # SQL stores: the native bulk path; anywhere else, or on any doubt, log_batch.
            sql_bulk.log_batch(client, self.tracking_uri, self.run_id, batch.metrics,
                               batch.params, batch.tags, report=self._log)
        except Exception as error:
            if is_retryable(error):
                raise
            self._reject(records, error)


# --- the process ---------------------------------------------------------------------------


@dataclass
class WriterResult:
    """What a writer did, for ``agentnn model sync`` to say."""

    sent: int = 0
    """Records the store confirmed."""
    events: list[str] = field(default_factory=list)
    """One line per journal set aside, chunk set aside or run found killed."""
    waiting: list[str] = field(default_factory=list)
    """One line per journal left for later (its training process still writes it)."""
    store_error: str | None = None
    """The last error of a store that did not answer, when the writer gave up retrying."""


class Writer:
    """Scans a journal folder and forwards every journal that has unsent records."""

    def __init__(
        self,
        journal_dir: Path,
        retry_limit: float = ORPHAN_RETRY_LIMIT,
        *,
        out: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        wake: threading.Event | None = None,
        passed: threading.Event | None = None,
        freeze_gc: bool = True,
        poll_interval: float = POLL_INTERVAL,
        handoff: Handoff | None = None,
    ) -> None:
        """``out`` takes the writer's log lines (stdout, the writer process's log file, by
        default); ``stop`` ends :meth:`run` between passes and ``wake`` cuts an idle wait short;
        ``passed`` is set after every pass (a run waiting for its drain looks at once);
        ``freeze_gc`` only where the process is the writer's own (not in a training process:
        its objects would be frozen for good; there :mod:`agentnn.heap` freezes them while a
        run is open); ``poll_interval`` is the idle wait between scans (a writer thread, woken by
        its own runs' ends, scans less often: see :meth:`_wait_for_work`); ``handoff`` holds
        the chunks its own process's runs wrote (a writer thread's), taken instead of read."""
        self.journal_dir = journal_dir
        self.handoff = handoff
        self.poll_interval = poll_interval
        self.retry_limit = retry_limit
        self.out = out or _say
        self.stop = stop
        self.wake = wake
        self.passed = passed
        self.result = WriterResult()
        self._forwarders: dict[Path, JournalForwarder] = {}
        self._clients: dict[str, Any] = {}
        self._broken: set[Path] = set()
        self._freeze_gc = freeze_gc
        self._frozen = False

    def report(self, line: str) -> None:
        """Say it in the writer's log and keep it for ``sync``."""
        self.out(line)
        self.result.events.append(line)

    def client_for(self, tracking_uri: str) -> MlflowClient:
        if tracking_uri not in self._clients:
            from mlflow import MlflowClient

            from agentnn import config
            from agentnn.mlflow_integration.store import Store

            # credentials from .env reach MLflow through the store layer, as in the trainer
            Store.from_settings(config.resolve(tracking_uri)).configure_mlflow()
            self._clients[tracking_uri] = MlflowClient(tracking_uri=tracking_uri)
        return self._clients[tracking_uri]

    def journals(self) -> tuple[list[JournalForwarder], list[str]]:
        """A forwarder per readable journal, and a line per journal whose header is not written
        yet; broken headers are set aside on the way."""
        forwarders = []
        waiting = []
        for journal in list_journals(self.journal_dir):
            if journal in self._broken:
                continue
            forwarder = self._forwarders.get(journal)
            if forwarder is None:
                try:
                    forwarder = JournalForwarder(journal, self.client_for, self.report,
                                                 self.out, self.handoff)
                except FileNotFoundError:
                    continue
                except HeaderIncomplete:
                    if not self._header_given_up(journal):
                        waiting.append(f"journal {journal}: its header is still being written; "
                                       "left for later")
                    continue
                except DamagedJournalError as error:
                    self._set_aside_journal(journal, error.reason)
                    continue
                self._forwarders[journal] = forwarder
                self._prepare_store(forwarder.tracking_uri)
            forwarders.append(forwarder)
        return forwarders, waiting

    def _prepare_store(self, tracking_uri: str) -> None:
        """Get a store ready when a journal for it appears rather than at its first send (its
        client, its path, compiled statements): a run shorter than a send interval would wait
        for that at its end. A store that fails here fails again, and is reported, at the send."""
        if tracking_uri in self._clients:
            return
        from agentnn.mlflow_integration import sql_bulk

        try:
            self.client_for(tracking_uri)
            sql_bulk.prepare(tracking_uri, report=self.out)
        except Exception:  # noqa: BLE001 - said by the send that meets it
            return

    def _header_given_up(self, journal: Path) -> bool:
        """A header without its newline for longer than a write takes was cut by a crash."""
        try:
            age = time.time() - journal.stat().st_mtime
        except FileNotFoundError:
            return True
        if age < HEADER_GRACE:
            return False
        self._set_aside_journal(journal, "broken header: cut off before its newline")
        return True

    def _set_aside_journal(self, journal: Path, reason: str) -> None:
        try:
            damaged = set_aside_journal(journal)
        except FileNotFoundError:
            return
        self.report(f"journal {journal}: {reason}; the whole journal is set aside as {damaged}")

    def forward_pass(self) -> tuple[int, Exception | None]:
        """Forward every journal once: (how much happened, the last store error or None)."""
        done, failure = 0, None
        forwarders, waiting = self.journals()
        for forwarder in forwarders:
            sent_before = forwarder.sent
            try:
                done += forwarder.forward()
            except FileNotFoundError:  # its run confirmed the drain and removed the journal
                self._forwarders.pop(forwarder.journal, None)
            except Exception as error:
                if is_retryable(error):
                    failure = error  # the other journals still get their turn
                    continue
                self.out(f"giving up on {forwarder.journal.name}: {error}")
                self._broken.add(forwarder.journal)
            finally:
                self.result.sent += forwarder.sent - sent_before
        for journal in [j for j in self._forwarders if not j.exists()]:
            del self._forwarders[journal]
        if done and not self._frozen:
            # MLflow, SQLAlchemy and the store's engine are loaded now: their millions of
            # objects live as long as the writer, and the garbage collector's full passes over
            # them (set off by the rows a send allocates) cost about a fifth of a send's CPU.
            # A writer thread freezes them only while a run holds the heap (agentnn.heap).
            if self._freeze_gc:
                gc.freeze()
            else:
                heap.refreeze()
            self._frozen = True
        self.result.waiting = waiting + [
            f"journal {f.journal}: its last line is still being written by its training process "
            f"({f.header.describe_process()}); left for later"
            for f in self._forwarders.values() if f.waiting_on_tail
        ]
        return done, failure

    def run(self, parent_pid: int | None, once: bool = False) -> WriterResult:
        """Forward until done (``once``: until a pass finds nothing to do)."""
        backoff, idle_since, failing_since = BACKOFF_START, time.monotonic(), None
        from agentnn.mlflow_integration.push import AutoPusher  # runs kept locally in an outage

        pusher = None if once else AutoPusher(self.journal_dir, log=self.out)
        while self.stop is None or not self.stop.is_set():
            done, failure = self.forward_pass()
            if self.passed is not None:
                self.passed.set()
            if failure is not None:
                failing_since = failing_since or time.monotonic()
                self.out(f"store did not answer ({failure}); retrying in {backoff:.1f}s")
                orphan = parent_pid is not None and not pid_alive(parent_pid)
                if (once or orphan) and time.monotonic() - failing_since > self.retry_limit:
                    self.result.store_error = str(failure).splitlines()[0] if str(failure) else (
                        type(failure).__name__)
                    return self.result
                _idle(backoff, self.stop)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff, failing_since = BACKOFF_START, None
            if done:
                idle_since = time.monotonic()
                continue
            # An idle pass: nothing complete to send, nothing to set aside; never spin.
            pushing = pusher is not None and pusher.step()  # True while a push waits
            if once or (parent_pid is not None and not pid_alive(parent_pid)):
                if not pushing or time.monotonic() - idle_since > self.retry_limit:
                    return self.result
            elif time.monotonic() - idle_since > IDLE_EXIT and not pushing:
                return self.result
            self._wait_for_work()
        return self.result

    def _wait_for_work(self) -> None:
        """Idle until the next scan: ``poll_interval``, cut short by a wake-up.

        A writer that scans rarely (a writer thread, woken by its own runs' ends) looks every
        :data:`POLL_INTERVAL` while another process's journal is in the folder, and otherwise
        stops waiting when the folder changes (looked at every :data:`FOLDER_WATCH_INTERVAL`):
        a run of another process cannot wake it, and would wait for its scan.
        """
        if self.poll_interval <= POLL_INTERVAL or self.wake is None:
            _idle(self.poll_interval, self.wake)
            return
        this_process = TrainingProcess.current()
        if any(f.header.process != this_process for f in self._forwarders.values()):
            _idle(POLL_INTERVAL, self.wake)
            return
        listing = _modified(self.journal_dir)
        deadline = time.monotonic() + self.poll_interval
        while (left := deadline - time.monotonic()) > 0:
            if self.wake.wait(min(FOLDER_WATCH_INTERVAL, left)):
                self.wake.clear()
                return
            if _modified(self.journal_dir) != listing:  # a journal appeared (or went)
                return


def _modified(folder: Path) -> int:
    """The folder's modification time: it changes when a file is created, renamed or removed in
    it, not when one is appended to."""
    try:
        return folder.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _idle(seconds: float, wake: threading.Event | None = None) -> None:
    """Wait ``seconds``, or less when woken: by ``wake`` (a writer thread), by
    :data:`WAKE_SIGNAL` (the writer process), or not at all (inside `agentnn model sync`)."""
    if wake is not None:
        if wake.wait(seconds):
            wake.clear()
    elif WAKE_SIGNAL in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        signal.sigtimedwait([WAKE_SIGNAL], seconds)
    else:
        time.sleep(seconds)


def lock_holder(journal_dir: Path) -> int | None:
    """The pid written in the folder's lock by the writer that holds it (None if unreadable).

    Only meaningful while the lock is held; the file keeps the last holder's pid after it.
    """
    try:
        return int((journal_dir / LOCK_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


def forward_all(
    journal_dir: Path,
    *,
    parent_pid: int | None = None,
    once: bool = False,
    retry_limit: float = ORPHAN_RETRY_LIMIT,
    wait_for_lock: bool = False,
) -> WriterResult | None:
    """Be the folder's writer until done; None when another writer holds the folder.

    ``wait_for_lock``: wait for the holder to let go instead (a writer that takes over from
    the writer thread of a training process that is exiting).
    """
    journal_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    from agentnn.config import WRITER_HTTP_DEFAULTS

    for name, value in WRITER_HTTP_DEFAULTS.items():  # the writer has its own back-off
        os.environ.setdefault(name, value)
    with folder_lock(journal_dir, wait=wait_for_lock) as held:
        if not held:
            return None
        return Writer(journal_dir, retry_limit).run(parent_pid, once=once)


@contextlib.contextmanager
def folder_lock(journal_dir: Path, *, wait: bool = False) -> Iterator[bool]:
    """Hold the folder's writer lock, with this process's pid in it; yields False when another
    writer holds it (and ``wait`` is not set). Released when the block ends."""
    with open(journal_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield True


# Imported by MLflow's package on the way to what the writer uses, never used by the writer.
SKIPPED_IMPORTS = ("pandas",)


def import_mlflow() -> None:
    """Import MLflow for the writer without the modules it never uses (its start-up cost).

    Importing MLflow is most of a writer's start-up CPU (seconds on a loaded machine), and a
    writer at the lowest priority pays it while training holds the cores, so it shows at the end
    of a run. pandas alone is about a third of it, imported by MLflow's dataset registry, which
    guards it as optional: it is kept out while MLflow's package loads (and importable again
    after). Should a future MLflow need it at import time, MLflow is imported in full.
    """
    if "mlflow" in sys.modules:
        return
    blocked = [name for name in SKIPPED_IMPORTS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "import pandas" -> ImportError
    try:
        import mlflow  # noqa: F401
    except ImportError:
        for name in [n for n in sys.modules if n == "mlflow" or n.startswith("mlflow.")]:
            del sys.modules[name]
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    import mlflow  # noqa: F401, F811  (in full, if the lean import failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Forward agentnn run journals to MLflow.")
    parser.add_argument("journal_dir", type=Path)
    parser.add_argument("--parent", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--once", action="store_true", help="send what is there, then exit")
    parser.add_argument("--wait-for-lock", action="store_true",
                        help="wait for the folder's current writer to let go, then take over")
    args = parser.parse_args(argv)
    # Before the folder's lock is taken (the pid in it tells the owner it may wake us): from
    # here on the wake-up signal waits for sigtimedwait instead of ending the process.
    signal.pthread_sigmask(signal.SIG_BLOCK, {WAKE_SIGNAL})
    if not args.once:
        os.nice(WRITER_NICENESS)
    import_mlflow()
    gc.freeze()  # MLflow's modules live as long as the writer: kept out of full collections
    forward_all(args.journal_dir, parent_pid=args.parent, once=args.once,
                wait_for_lock=args.wait_for_lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
