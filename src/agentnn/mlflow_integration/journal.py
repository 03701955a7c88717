"""The per-run journal: an append-only local file that holds every record until the store has it.

Layout of ``<journal_dir>/<run_id>.<ns>.jsonl``: the first line is a header (``{"run_id",
"tracking_uri", "created"}``); every further line is one *chunk*, a JSON array of records
appended in one write:

    ["m", key, value, timestamp_ms, step]   a metric point
    ["p", key, value]                       a param
    ["t", key, value]                       a tag
    ["end", status, end_time_ms]            the run ended; the writer sets the status

The writer process records how far it got in ``<run_id>.cursor`` as ``"<byte offset> <index>"``:
the byte offset of the first chunk not fully sent and the index of the first record in it not sent.
A record is never dropped: it stays in the journal until the cursor has moved past it.

The training thread only appends to an in-memory deque (thread-safe, no lock); a daemon thread
moves the deque to the file every ``flush_interval`` seconds, so the training loop never waits on
disk or on the store.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentnn.errors import JournalError

JOURNAL_SUFFIX = ".jsonl"
CURSOR_SUFFIX = ".cursor"
REJECTED_SUFFIX = ".rejected.jsonl"
MAX_RECORDS_PER_CHUNK = 5000  # bounds one write and one parse
KEEPALIVE_INTERVAL = 5.0  # seconds between checks that a writer is forwarding the journal


def new_journal_path(journal_dir: Path, run_id: str) -> Path:
    """A journal of its own for each time a run is started or resumed.

    Never reusing a name means a writer can't mistake a new journal for an old, finished one.
    """
    return journal_dir / f"{run_id}.{time.time_ns()}{JOURNAL_SUFFIX}"


@dataclass(frozen=True)
class Cursor:
    """How far the writer got: the first unsent record is record ``index`` of chunk ``offset``."""

    offset: int
    index: int = 0

    @classmethod
    def load(cls, path: Path) -> Cursor | None:
        try:
            offset, index = path.read_text().split()
            return cls(int(offset), int(index))
        except FileNotFoundError:
            return None
        except ValueError as error:
            raise JournalError(f"unreadable journal cursor {path}: {error}") from None

    def save(self, path: Path) -> None:
        """Replace the cursor file atomically, so a crash leaves the old or the new one."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset} {self.index}")
        os.replace(tmp, path)


def cursor_path(journal: Path) -> Path:
    return journal.with_suffix(CURSOR_SUFFIX)


def read_header(journal: Path) -> tuple[dict[str, Any], int]:
    """The header dict and the byte offset of the first chunk."""
    with journal.open("rb") as handle:
        line = handle.readline()
    if not line.endswith(b"\n"):
        raise JournalError(f"journal {journal} has no complete header yet")
    return json.loads(line), len(line)


def read_chunks(journal: Path, offset: int) -> Iterator[tuple[int, int, list[list[Any]]]]:
    """Yield ``(start, end, records)`` for every complete chunk from byte ``offset`` on.

    A last line without its newline is a chunk still being written and is left for later.
    """
    with journal.open("rb") as handle:
        handle.seek(offset)
        position = offset
        for line in handle:
            if not line.endswith(b"\n"):
                return
            start, position = position, position + len(line)
            try:
                records = json.loads(line)
            except json.JSONDecodeError as error:
                raise JournalError(f"corrupt chunk at byte {start} of {journal}: {error}") from None
            yield start, position, records


def unsent_bytes(journal: Path) -> int:
    """Bytes of the journal the writer has not confirmed yet (0 when fully sent)."""
    try:
        size = journal.stat().st_size
    except FileNotFoundError:
        return 0
    cursor = Cursor.load(cursor_path(journal))
    if cursor is None:
        return size
    return max(0, size - cursor.offset) if cursor.index == 0 else max(1, size - cursor.offset)


class BufferedJournal:
    """Buffers records in memory and appends them to the run's journal from a daemon thread."""

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        flush_interval: float,
        keepalive: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._keepalive = keepalive
        self._records: deque[list[Any]] = deque()
        self._flush_interval = flush_interval
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            self._file = open(path, "ab")  # noqa: SIM115 - closed in close()
            if fresh:
                os.chmod(path, 0o600)  # the header may hold a URI with credentials
                self._file.write(json.dumps(header).encode() + b"\n")
                self._file.flush()
        except OSError as error:
            raise JournalError(f"cannot write the run journal {path}: {error}") from None
        self._thread = threading.Thread(
            target=self._flush_loop, name="agentnn-journal", daemon=True
        )
        self._thread.start()

    def add(self, record: list[Any]) -> None:
        """Queue one record; called on the training thread, costs a deque append."""
        self._records.append(record)

    def flush(self, *, sync: bool = False) -> None:
        """Append every queued record to the file (and fsync when ``sync``)."""
        with self._write_lock:
            while self._records:
                count = min(len(self._records), MAX_RECORDS_PER_CHUNK)
                chunk = [self._records.popleft() for _ in range(count)]
                try:
                    self._file.write(json.dumps(chunk, separators=(",", ":")).encode() + b"\n")
                except (OSError, ValueError) as error:
                    self._records.extendleft(reversed(chunk))
                    raise JournalError(f"cannot append to {self.path}: {error}") from None
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        """Stop the flush thread and write what is left, durably."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush(sync=True)
        self._file.close()

    def _flush_loop(self) -> None:
        last_keepalive = time.monotonic()
        while not self._stop.wait(self._flush_interval):
            try:
                self.flush()
            except JournalError:
                time.sleep(self._flush_interval)  # keep the records; the final flush raises
            if self._keepalive and time.monotonic() - last_keepalive > KEEPALIVE_INTERVAL:
                last_keepalive = time.monotonic()
                self._keepalive()
