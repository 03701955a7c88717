"""The training side of a journal: an in-memory queue, a flush thread, and the hand-off.

The training thread only appends to a deque; a daemon thread writes it to the file every
``flush_interval`` seconds, so the loop never waits on disk or on the store. When this process's
own writer thread serves the folder, each chunk is also handed to it (:class:`Handoff`), so the
writer does not read back and parse what was just written; the file stays the record.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from agentnn.errors import JournalError
from agentnn.mlflow_integration.journal.format import (
    FORMAT_VERSION,
    JOURNAL_SUFFIX,
    MAX_RECORDS_PER_CHUNK,
    Chunk,
    Header,
    encode_chunk,
)
from agentnn.mlflow_integration.journal.process import TrainingProcess
from agentnn.mlflow_integration.journal.records import Record

HANDOFF_LIMIT = 100_000  # records the handoff holds at most (about 10 MB); the rest are read back
# --- writing -------------------------------------------------------------------------------


def new_journal_path(journal_dir: Path, run_id: str) -> Path:
    """A journal of its own for each time a run is started or resumed.

    Never reusing a name means a writer can't mistake a new journal for an old, finished one.
    """
    return journal_dir / f"{run_id}.{time.time_ns()}{JOURNAL_SUFFIX}"


def new_header(run_id: str, tracking_uri: str) -> Header:
    """The header of a journal written by this process."""
    return Header(run_id, tracking_uri, int(time.time() * 1000), FORMAT_VERSION,
                  TrainingProcess.current())


def _make_private(folder: Path) -> None:
    """Only the owner may list or read the journals: their records are params and tags before
    the store has them, and a folder made before this rule may still be open to everyone."""
    try:
        if folder.stat().st_mode & 0o077:
            os.chmod(folder, 0o700)
    except PermissionError:  # someone else's folder: the files themselves are still 0600
        pass


class Handoff:
    """The chunks this process appended to its journals, held for this process's writer thread.

    Why: that thread would otherwise read back and parse what the same process wrote a moment
    before, about a tenth of its CPU per point, all of it taken from training on a busy machine.
    The file stays the record: a chunk is taken from here only when it starts exactly where the
    writer's cursor is, and anything else (a chunk not handed over, one that did not fit under
    ``limit``, a send that failed and is tried again) is read from the file, as by any writer.
    """

    def __init__(self, limit: int = HANDOFF_LIMIT) -> None:
        self.limit = limit
        self._chunks: dict[Path, dict[int, tuple[int, list[Record]]]] = {}
        self._held = 0
        self._lock = threading.Lock()
        self._keys: dict[Path, Path] = {}  # each spelling of a journal's path -> its real path

    def give(self, journal: Path, start: int, end: int, records: list[Record]) -> None:
        """Hold the chunk at bytes ``start:end`` of ``journal`` (dropped when it does not fit)."""
        with self._lock:
            if self._held + len(records) > self.limit:
                return
            self._chunks.setdefault(self._key(journal), {})[start] = (end, records)
            self._held += len(records)

    def take(self, journal: Path, start: int) -> Chunk | None:
        """The chunk of ``journal`` that starts at byte ``start``, if it was handed over; chunks
        before ``start`` are behind the writer's cursor and let go."""
        with self._lock:
            chunks = self._chunks.get(self._key(journal))
            if not chunks:
                return None
            for behind in [offset for offset in chunks if offset < start]:
                self._held -= len(chunks.pop(behind)[1])
            found = chunks.pop(start, None)
            if found is None:
                return None
            self._held -= len(found[1])
            return Chunk(start, found[0], found[1])

    def forget(self, journal: Path) -> None:
        """Let go of what is held for ``journal``, and its spellings (the journal is sent)."""
        with self._lock:
            key = self._key(journal)
            for _, records in self._chunks.pop(key, {}).values():
                self._held -= len(records)
            for spelling in [name for name, real in self._keys.items() if real == key]:
                del self._keys[spelling]

    @property
    def held(self) -> int:
        """Records held now."""
        return self._held

    def _key(self, journal: Path) -> Path:
        """One name per file (a run and the writer may spell the folder differently), resolved
        once per spelling: resolving is a system call per folder of the path."""
        key = self._keys.get(journal)
        if key is None:
            key = self._keys[journal] = journal.resolve()
        return key


HANDOFF = Handoff()  # the process's: its journals give, its writer thread takes


class BufferedJournal:
    """Buffers records in memory and appends them to the run's journal from a daemon thread."""

    def __init__(self, path: Path, header: Header, flush_interval: float) -> None:
        self.path = path
        self.header = header
        self.handoff: Handoff | None = None  # set when this process's writer thread serves it
        self._records: deque[Record] = deque()
        self._flush_interval = flush_interval
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _make_private(path.parent)
            fresh = not path.exists()
            self._file = open(path, "ab")  # noqa: SIM115 - closed in close()
            if fresh:
                os.chmod(path, 0o600)  # the header may hold a URI with credentials
                self._file.write(header.to_line())
                self._file.flush()
        except OSError as error:
            raise JournalError(f"cannot write the run journal {path}: {error}") from None
        self._thread = threading.Thread(
            target=self._flush_loop, name="agentnn-journal", daemon=True
        )
        self._thread.start()

    def add(self, record: Record) -> None:
        """Queue one record; called on the training thread, costs a deque append."""
        self._records.append(record)

    def add_all(self, records: Iterable[Record]) -> None:
        """Queue records in one step (a deque extend, which the flush thread sees whole)."""
        self._records.extend(records)

    def flush(self, *, sync: bool = False) -> None:
        """Append every queued record to the file (and fsync when ``sync``)."""
        with self._write_lock:
            written: list[Chunk] = []
            popleft = self._records.popleft
            while self._records:
                count = min(len(self._records), MAX_RECORDS_PER_CHUNK)
                chunk = [popleft() for _ in range(count)]
                try:
                    start = self._file.tell()
                    line = encode_chunk(chunk)
                    self._file.write(line)
                except (OSError, ValueError) as error:
                    self._records.extendleft(reversed(chunk))
                    raise JournalError(f"cannot append to {self.path}: {error}") from None
                written.append(Chunk(start, start + len(line), chunk))
            self._file.flush()
            if self.handoff is not None:  # once in the file: the writer may take them now
                for done in written:
                    self.handoff.give(self.path, done.start, done.end, done.records)
            if sync:
                self._sync()

    def sync(self) -> None:
        """Make what is appended durable (an fsync)."""
        with self._write_lock:
            self._sync()

    def _sync(self) -> None:
        try:
            os.fsync(self._file.fileno())
        except (OSError, ValueError) as error:
            raise JournalError(f"cannot sync {self.path}: {error}") from None

    def close(self, *, sync: bool = True) -> None:
        """Stop the flush thread and write what is left (durably, unless ``sync`` is false:
        a run whose records the store has confirmed needs no fsync of their copy)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush(sync=sync)
        self._file.close()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval):
            try:
                self.flush()
            except JournalError:
                time.sleep(self._flush_interval)  # keep the records; the final flush raises
