"""The writer process: forwards run journals to the MLflow store with ``log_batch``.

One writer serves every journal in a folder (a file lock makes it the only one) and runs at low
priority, so the 98% of logging cost that is SQLAlchemy work in Python never holds the training
process's GIL. It retries with back-off while the store does not answer, and exits once its
parent process is gone and every journal is sent, or after a long idle spell.

Start by hand (what ``agentnn model sync`` does, in the foreground)::

    python -m agentnn.mlflow_integration.writer <journal_dir> [--once]
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentnn.mlflow_integration.journal import (
    JOURNAL_SUFFIX,
    REJECTED_SUFFIX,
    Cursor,
    cursor_path,
    read_chunks,
    read_header,
)

LOCK_NAME = "writer.lock"
LOG_NAME = "writer.log"
WRITER_NICENESS = 19  # the lowest priority: training always comes first
POLL_INTERVAL = 0.2  # seconds between scans when there is nothing to send
IDLE_EXIT = 600.0  # seconds without work after which a writer whose parent lives exits anyway
ORPHAN_RETRY_LIMIT = 600.0  # seconds an orphaned writer keeps retrying an unanswering store
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0

# MLflow's log_batch limits.
MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000


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


def start_writer(journal_dir: Path) -> subprocess.Popen | None:
    """Start a detached writer for ``journal_dir`` unless one runs; returns the new process."""
    journal_dir.mkdir(parents=True, exist_ok=True)
    if writer_running(journal_dir):
        return None
    log = open(journal_dir / LOG_NAME, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "agentnn.mlflow_integration.writer", str(journal_dir),
             "--parent", str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    finally:
        log.close()


# --- batching ------------------------------------------------------------------------------


@dataclass
class Batch:
    """Records grouped within MLflow's log_batch limits."""

    metrics: list[Any] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)

    def fits(self, kind: str) -> bool:
        total = len(self.metrics) + len(self.params) + len(self.tags)
        if total >= MAX_ENTITIES:
            return False
        limits = {"m": (self.metrics, MAX_METRICS), "p": (self.params, MAX_PARAMS),
                  "t": (self.tags, MAX_TAGS)}
        items, limit = limits[kind]
        return len(items) < limit

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


def is_retryable(error: Exception) -> bool:
    """Errors that mean "the store did not answer", as opposed to "the store said no"."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        code = error.get_http_status_code()
        return code >= 500 or code == 429
    return True  # connection errors, timeouts, locked databases


class JournalForwarder:
    """Sends one run's journal, from its cursor on, to the store of its header."""

    def __init__(self, journal: Path, client_for: Callable[[str], Any]) -> None:
        self.journal = journal
        self.cursor_file = cursor_path(journal)
        header, first_chunk = read_header(journal)
        self.run_id: str = header["run_id"]
        self.tracking_uri: str = header["tracking_uri"]
        self.cursor = Cursor.load(self.cursor_file) or Cursor(first_chunk, 0)
        self.ended = False
        self._client_for = client_for

    def pending(self) -> bool:
        return self.journal.stat().st_size > self.cursor.offset

    def forward(self) -> int:
        """Send everything complete in the journal; returns the number of records sent.

        The cursor is saved after every accepted batch, so a crash re-sends at most one batch,
        which MLflow's SQL store ignores (identical metric points and params are deduplicated).
        """
        from mlflow.entities import Metric, Param, RunTag

        client = self._client_for(self.tracking_uri)
        sent = 0
        for start, end, records in read_chunks(self.journal, self.cursor.offset):
            index = self.cursor.index if start == self.cursor.offset else 0
            while index < len(records):
                batch, stop, terminal = Batch(), index, None
                while stop < len(records):
                    record = records[stop]
                    kind = record[0]
                    if kind == "end":
                        terminal = record
                        stop += 1
                        break
                    if not batch.fits(kind):
                        break
                    if kind == "m":
                        batch.metrics.append(Metric(record[1], record[2], record[3], record[4]))
                    elif kind == "p":
                        batch.params.append(Param(record[1], record[2]))
                    elif kind == "t":
                        batch.tags.append(RunTag(record[1], record[2]))
                    stop += 1
                if batch:
                    self._send(client, batch, records[index:stop])
                if terminal is not None:
                    self._terminate(client, terminal)
                sent += stop - index
                index = stop
                self.cursor = Cursor(start, index) if index < len(records) else Cursor(end, 0)
                self.cursor.save(self.cursor_file)
        if self.ended and self.cursor.offset == self.journal.stat().st_size:
            self.journal.unlink()  # the run ended and the store has all of it
            self.cursor_file.unlink(missing_ok=True)
        return sent

    def _terminate(self, client: Any, terminal: list[Any]) -> None:
        self.ended = True
        try:
            client.set_terminated(self.run_id, terminal[1], end_time=terminal[2])
        except Exception as error:
            if is_retryable(error):
                raise
            self._reject(terminal, error)

    def _reject(self, records: Any, error: Exception) -> None:
        """Keep records the store refused for good beside the journal, and go on."""
        rejected = self.journal.with_name(
            self.journal.name.removesuffix(JOURNAL_SUFFIX) + REJECTED_SUFFIX
        )
        with rejected.open("a") as handle:
            handle.write(json.dumps({"error": str(error)[:2000], "records": records}) + "\n")

    def _send(self, client: Any, batch: Batch, records: list[Any]) -> None:
        from agentnn.mlflow_integration import sql_bulk

        try:
            # SQL stores: the native bulk path; anywhere else, or on any doubt, log_batch.
            sql_bulk.log_batch(client, self.tracking_uri, self.run_id, batch.metrics,
                               batch.params, batch.tags)
        except Exception as error:
            if is_retryable(error):
                raise
            self._reject(records, error)


# --- the process ---------------------------------------------------------------------------


class Writer:
    """Scans a journal folder and forwards every journal that has unsent records."""

    def __init__(self, journal_dir: Path, retry_limit: float = ORPHAN_RETRY_LIMIT) -> None:
        self.journal_dir = journal_dir
        self.retry_limit = retry_limit
        self._forwarders: dict[Path, JournalForwarder] = {}
        self._clients: dict[str, Any] = {}
        self._broken: set[Path] = set()

    def client_for(self, tracking_uri: str) -> Any:
        if tracking_uri not in self._clients:
            from mlflow import MlflowClient

            self._clients[tracking_uri] = MlflowClient(tracking_uri=tracking_uri)
        return self._clients[tracking_uri]

    def pending_journals(self) -> list[JournalForwarder]:
        pending = []
        for journal in sorted(self.journal_dir.glob(f"*{JOURNAL_SUFFIX}")):
            if journal.name.endswith(REJECTED_SUFFIX) or journal in self._broken:
                continue
            forwarder = self._forwarders.get(journal)
            if forwarder is None:
                try:
                    forwarder = JournalForwarder(journal, self.client_for)
                except Exception:  # header still being written, or not a journal
                    continue
                self._forwarders[journal] = forwarder
            try:
                if forwarder.pending():
                    pending.append(forwarder)
            except FileNotFoundError:  # the run removed its finished journal
                del self._forwarders[journal]
        return pending

    def _forward(self, forwarder: JournalForwarder) -> int:
        """Forward one journal; a journal the store refuses for good is set aside, not retried."""
        try:
            return forwarder.forward()
        except FileNotFoundError:  # its run confirmed the drain and removed the journal
            self._forwarders.pop(forwarder.journal, None)
            return 0
        except Exception as error:
            if is_retryable(error):
                raise
            print(f"giving up on {forwarder.journal.name}: {error}", flush=True)
            self._broken.add(forwarder.journal)
            return 0

    def run(self, parent_pid: int | None, once: bool = False) -> int:
        """Forward until done; returns the number of records sent."""
        total, backoff, idle_since, failing_since = 0, BACKOFF_START, time.monotonic(), None
        from agentnn.mlflow_integration.push import AutoPusher  # runs kept locally in an outage

        pusher = None if once else AutoPusher(self.journal_dir)
        while True:
            pending = self.pending_journals()
            try:
                for forwarder in pending:
                    total += self._forward(forwarder)
                backoff, failing_since = BACKOFF_START, None
            except Exception as error:
                failing_since = failing_since or time.monotonic()
                print(f"store did not answer ({error}); retrying in {backoff:.1f}s", flush=True)
                orphan = parent_pid is not None and not _alive(parent_pid)
                if (once or orphan) and time.monotonic() - failing_since > self.retry_limit:
                    return total
                time.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if pending:
                idle_since = time.monotonic()
                continue
            pushing = pusher is not None and pusher.step()  # True while a push waits
            if once or (parent_pid is not None and not _alive(parent_pid)):
                if not pushing or time.monotonic() - idle_since > self.retry_limit:
                    return total
            elif time.monotonic() - idle_since > IDLE_EXIT and not pushing:
                return total
            time.sleep(POLL_INTERVAL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forward_all(
    journal_dir: Path,
    *,
    parent_pid: int | None = None,
    once: bool = False,
    retry_limit: float = ORPHAN_RETRY_LIMIT,
) -> int:
    """Be the folder's writer until done; returns records sent, or -1 when another writer is."""
    journal_dir.mkdir(parents=True, exist_ok=True)
    # The writer retries with its own back-off; MLflow's HTTP retries would block one call for
    # minutes while a server is down.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    with open(journal_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return -1
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        return Writer(journal_dir, retry_limit).run(parent_pid, once=once)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Forward agentnn run journals to MLflow.")
    parser.add_argument("journal_dir", type=Path)
    parser.add_argument("--parent", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--once", action="store_true", help="send what is there, then exit")
    args = parser.parse_args(argv)
    if not args.once:
        os.nice(WRITER_NICENESS)
    forward_all(args.journal_dir, parent_pid=args.parent, once=args.once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
