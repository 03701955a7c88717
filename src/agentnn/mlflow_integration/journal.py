"""The per-run journal: an append-only local file that holds every record until the store has it.

Format version 2, ``<journal_dir>/<run_id>.<ns>.jsonl``:

- line 1, the *header*, a JSON object::

      {"format": 2, "run_id": ..., "tracking_uri": ..., "created": <ms>,
       "process": {"host": ..., "pid": ..., "start": <the process's start time, or null>}}

  ``process`` names the training process that writes the journal. Its start time (from
  ``/proc/<pid>/stat``) tells a live writer from another process that got the same pid later.
- every further line, a *chunk*: ``<crc32 of the JSON, 8 hex digits> <JSON array of records>``,
  appended in one write. A chunk whose checksum, JSON or records do not check out is *damaged*;
  a last line without its newline is *torn* (a write in progress, or a crash in mid-write).

The records, one class each below, and their JSON form (:meth:`to_json`)::

    ["m", key, value, timestamp_ms, step]      MetricRecord
    ["p", key, value]                          ParamRecord
    ["t", key, value]                          TagRecord
    ["end", status, end_time_ms, applied]      EndRecord (applied: the status is already set)

Version 1 journals (a header without ``format``, chunks without a checksum, no ``process``)
still replay; their training process is taken as gone, as no version-1 writer is left running.

The writer process records how far it got in ``<run_id>.<ns>.cursor`` as
``"<byte offset> <index> <last metric time>"``: the byte offset of the first chunk not fully sent,
the index of the first record in it not sent, and the time of the last metric point sent (the end
time of a run found killed). A record is never dropped: it stays in the journal until the cursor
has moved past it, or it is set aside, whole, in ``<journal>.damaged`` (which no ``*.jsonl``
glob matches).

The training thread only appends to an in-memory deque (thread-safe, no lock); a daemon thread
moves the deque to the file every ``flush_interval`` seconds, so the training loop never waits on
disk or on the store. When the process's own writer thread serves the folder, each chunk is also
handed to it (:class:`Handoff`), so it does not read back and parse what was just written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson

from agentnn.errors import DamagedJournalError, JournalError

FORMAT_VERSION = 2
JOURNAL_SUFFIX = ".jsonl"
CURSOR_SUFFIX = ".cursor"
DAMAGED_SUFFIX = ".damaged"  # appended to the journal's name: "<run>.<ns>.jsonl.damaged"
REJECTED_SUFFIX = ".rejected.jsonl"
MAX_RECORDS_PER_CHUNK = 5000  # bounds one write and one parse
CHECKSUM_WIDTH = 8  # hex digits of a crc32
HEADER_GRACE = 60.0  # seconds a header without its newline may still be in the middle of a write
HANDOFF_LIMIT = 100_000  # records the handoff holds at most (about 10 MB); the rest are read back


# --- records -------------------------------------------------------------------------------


@dataclass(slots=True)
class MetricRecord:
    """One metric point."""

    key: str
    value: float
    timestamp: int
    step: int
    KIND: ClassVar[str] = "m"

    def to_json(self) -> tuple[Any, ...]:
        return (self.KIND, self.key, self.value, self.timestamp, self.step)

    @classmethod
    def from_json(cls, item: list[Any]) -> MetricRecord:
        _, key, value, timestamp, step = item
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"metric value {value!r} is not a number")
        return cls(_text(key), float(value), _integer(timestamp), _integer(step))


@dataclass(slots=True)
class ParamRecord:
    """One param (immutable once logged)."""

    key: str
    value: str
    KIND: ClassVar[str] = "p"

    def to_json(self) -> tuple[Any, ...]:
        return (self.KIND, self.key, self.value)

    @classmethod
    def from_json(cls, item: list[Any]) -> ParamRecord:
        _, key, value = item
        return cls(_text(key), _text(value))


@dataclass(slots=True)
class TagRecord:
    """One tag (the last value wins)."""

    key: str
    value: str
    KIND: ClassVar[str] = "t"

    def to_json(self) -> tuple[Any, ...]:
        return (self.KIND, self.key, self.value)

    @classmethod
    def from_json(cls, item: list[Any]) -> TagRecord:
        _, key, value = item
        return cls(_text(key), _text(value))


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

    def to_json(self) -> tuple[Any, ...]:
        return (self.KIND, self.status, self.end_time, self.applied)

    @classmethod
    def from_json(cls, item: list[Any]) -> EndRecord:
        if len(item) == 3:  # version 1: the writer always set the status
            _, status, end_time = item
            applied = False
        else:
            _, status, end_time, applied = item
        return cls(_text(status), _integer(end_time), bool(applied))


Record = MetricRecord | ParamRecord | TagRecord | EndRecord
RECORD_TYPES: dict[str, type[Record]] = {
    kind.KIND: kind for kind in (MetricRecord, ParamRecord, TagRecord, EndRecord)
}


def decode_record(item: Any) -> Record:
    """The typed record of one JSON item; ValueError when it is not one."""
    if not isinstance(item, list) or not item or item[0] not in RECORD_TYPES:
        raise ValueError(f"not a journal record: {str(item)[:80]}")
    try:
        return RECORD_TYPES[item[0]].from_json(item)
    except (TypeError, ValueError) as error:
        raise ValueError(f"malformed {item[0]!r} record: {error}") from None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return value


# --- the training process ------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (Linux ``/proc``); None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return int(fields[19])  # field 22, starttime
    except (IndexError, ValueError):
        return None


def pid_alive(pid: object) -> bool:
    """True while a process with this pid exists on this machine (ours or another user's)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class TrainingProcess:
    """The process that writes a journal: host, pid and start time (so a reused pid is told)."""

    host: str
    pid: int
    start: int | None

    @classmethod
    def current(cls) -> TrainingProcess:
        return _this_process(os.getpid())

    @classmethod
    def from_json(cls, data: Any) -> TrainingProcess:
        if not isinstance(data, dict):
            raise ValueError("'process' is not an object")
        start = data.get("start")
        return cls(_text(data.get("host")), _integer(data.get("pid")),
                   None if start is None else _integer(start))

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "start": self.start}

    def is_gone(self) -> bool:
        """True when the process has exited (or its pid now belongs to another process).

        A process on another host cannot be checked and counts as alive: its journal is left
        alone rather than its run declared killed.
        """
        if self == _this_process(os.getpid()):  # a writer thread asking about its own process
            return False
        if self.host != socket.gethostname():
            return False
        if not pid_alive(self.pid):
            return True
        if self.start is None:
            return False
        started = process_start_time(self.pid)
        return started is not None and started != self.start

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


@functools.lru_cache(maxsize=1)
def _this_process(pid: int) -> TrainingProcess:
    """This process, asked once per pid (a forked child has its own): the writer thread asks
    on every pass whether its own process is gone."""
    return TrainingProcess(socket.gethostname(), pid, process_start_time(pid))


# --- the header ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The first line of a journal: where its records go and who writes them."""

    run_id: str
    tracking_uri: str
    created: int
    format: int = FORMAT_VERSION
    process: TrainingProcess | None = None  # None in version-1 journals

    def to_line(self) -> bytes:
        data: dict[str, Any] = {
            "format": self.format, "run_id": self.run_id,
            "tracking_uri": self.tracking_uri, "created": self.created,
        }
        if self.process is not None:
            data["process"] = self.process.to_json()
        return json.dumps(data).encode() + b"\n"

    def process_gone(self) -> bool:
        """True when the training process has exited; version-1 journals count as gone."""
        return self.process is None or self.process.is_gone()

    def describe_process(self) -> str:
        return self.process.describe() if self.process else "a version-1 journal's process"


class HeaderIncomplete(JournalError):
    """The header line has no newline yet: the journal is being created (or was cut off)."""


def read_header(journal: Path) -> tuple[Header, int]:
    """The header and the byte offset of the first chunk.

    Raises:
        HeaderIncomplete: the first line has no newline yet.
        DamagedJournalError: the first line is not a journal header.
    """
    with journal.open("rb") as handle:
        line = handle.readline()
    if not line.endswith(b"\n"):
        raise HeaderIncomplete(f"journal {journal} has no complete header yet")
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("the first line is not a JSON object")
        version = data.get("format", 1)
        if version not in (1, FORMAT_VERSION):
            raise ValueError(f"unknown journal format {version!r}")
        process = data.get("process")
        header = Header(
            run_id=_text(data.get("run_id")),
            tracking_uri=_text(data.get("tracking_uri")),
            created=_integer(data.get("created", 0)),
            format=version,
            process=None if process is None else TrainingProcess.from_json(process),
        )
    except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise DamagedJournalError(str(journal), 0, f"broken header: {error}") from None
    return header, len(line)


# --- chunks --------------------------------------------------------------------------------


def encode_chunk(records: list[Record]) -> bytes:
    """One chunk line: ``<crc32> <JSON array>\\n``.

    orjson writes a chunk of metric points about ten times faster than ``json`` (the flush
    thread shares the interpreter with training). It writes NaN and ±inf as ``null``, which no
    record holds otherwise, so a chunk with ``null`` in it (such a point, or now and then a text
    that contains the word), or anything else orjson refuses (a lone surrogate, an integer
    beyond 64 bits), is written by ``json`` as ``NaN``/``Infinity``; both read back the same.
    Looking for the word costs less than looking at every value first.
    """
    items = [record.to_json() for record in records]
    payload = None
    with contextlib.suppress(TypeError, ValueError):  # orjson.JSONEncodeError: a TypeError
        payload = orjson.dumps(items)
    if payload is None or b"null" in payload:
        payload = json.dumps(items, separators=(",", ":")).encode()
    return b"%08x " % zlib.crc32(payload) + payload + b"\n"


@dataclass
class Chunk:
    """One complete line of a journal: its records, or why they cannot be read."""

    start: int
    end: int
    records: list[Record]
    damage: str | None = None  # the reason, for a damaged chunk (records is then empty)


def decode_chunk(line: bytes, version: int) -> list[Record]:
    """The records of one chunk line (without its newline); ValueError when it is damaged."""
    payload = line
    if version >= 2:
        checksum, _, payload = line.partition(b" ")
        if len(checksum) != CHECKSUM_WIDTH:
            raise ValueError("no checksum")
        try:
            expected = int(checksum, 16)
        except ValueError:
            raise ValueError("no checksum") from None
        if zlib.crc32(payload) != expected:
            raise ValueError("checksum mismatch")
    try:
        return _records(orjson.loads(payload))
    except ValueError:  # what json wrote (see encode_chunk): NaN and ±inf, or integers beyond
        pass  # 64 bits, which orjson reads as floats; JSONDecodeError is a ValueError too
    try:
        items = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not JSON: {error}") from None
    return _records(items)


def _records(items: Any) -> list[Record]:
    """The records of a chunk's JSON; ValueError when one does not check out."""
    if not isinstance(items, list):
        raise ValueError("not a list of records")
    records: list[Record] = []
    append = records.append
    for item in items:
        # Metric points are nearly every record: checked inline, as MetricRecord.from_json
        # checks them (JSON gives exact str/int/float types); anything else the long way.
        if type(item) is list and len(item) == 5 and item[0] == "m":
            _, key, value, timestamp, step = item
            kind = type(value)
            if (type(key) is str and (kind is float or kind is int)
                    and type(timestamp) is int and type(step) is int):
                append(MetricRecord(key, float(value), timestamp, step))
                continue
        append(decode_record(item))
    return records


def scan_chunks(
    journal: Path, offset: int, version: int, handoff: Handoff | None = None
) -> Iterator[Chunk]:
    """Yield every complete chunk from byte ``offset`` on, damaged ones included (marked).

    A chunk held in ``handoff`` (the writer thread's) is taken from there instead of read and
    parsed. A last line without its newline is torn and not yielded: the caller sees it as the
    bytes after the last chunk.
    """
    with journal.open("rb") as handle:
        handle.seek(offset)
        position = offset
        while True:
            if handoff is not None and (handed := handoff.take(journal, position)) is not None:
                yield handed
                position = handed.end
                handle.seek(position)
                continue
            line = handle.readline()
            if not line.endswith(b"\n"):
                return
            start, position = position, position + len(line)
            try:
                yield Chunk(start, position, decode_chunk(line[:-1], version))
            except ValueError as error:
                yield Chunk(start, position, [], damage=str(error))


def read_chunks(
    journal: Path, offset: int, version: int | None = None
) -> Iterator[tuple[int, int, list[Record]]]:
    """Yield ``(start, end, records)`` for every readable chunk from byte ``offset`` on.

    For readers (a live view): damaged chunks are skipped, they are the writer's to set aside.
    """
    if version is None:
        version = read_header(journal)[0].format
    for chunk in scan_chunks(journal, offset, version):
        if chunk.damage is None:
            yield chunk.start, chunk.end, chunk.records


def set_aside(journal: Path, data: bytes) -> Path:
    """Append damaged bytes, whole, to ``<journal>.damaged``; returns that file."""
    damaged = damaged_path(journal)
    with damaged.open("ab") as handle:
        os.chmod(damaged, 0o600)
        handle.write(data if data.endswith(b"\n") else data + b"\n")
    return damaged


def set_aside_journal(journal: Path) -> Path:
    """Move a whole journal (one whose header is broken) to ``<journal>.damaged``."""
    damaged = damaged_path(journal)
    if damaged.exists():
        set_aside(journal, journal.read_bytes())
        journal.unlink()
    else:
        os.replace(journal, damaged)
    cursor_path(journal).unlink(missing_ok=True)
    return damaged


def damaged_path(journal: Path) -> Path:
    return journal.with_name(journal.name + DAMAGED_SUFFIX)


def rejected_path(journal: Path) -> Path:
    return journal.with_name(journal.name.removesuffix(JOURNAL_SUFFIX) + REJECTED_SUFFIX)


def list_journals(journal_dir: Path) -> list[Path]:
    """The run journals in a folder (not the files of records the store refused)."""
    return sorted(
        path for path in journal_dir.glob(f"*{JOURNAL_SUFFIX}")
        if not path.name.endswith(REJECTED_SUFFIX)
    )


# --- the cursor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """How far the writer got: the first unsent record is record ``index`` of chunk ``offset``.

    ``last_time`` is the timestamp of the last metric point sent (0 when none yet).
    """

    offset: int
    index: int = 0
    last_time: int = 0

    @classmethod
    def load(cls, path: Path) -> Cursor | None:
        try:
            fields = path.read_text().split()
            return cls(*(int(value) for value in fields[:3]))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:
            raise JournalError(f"unreadable journal cursor {path}: {error}") from None

    def save(self, path: Path) -> None:
        """Replace the cursor file atomically, so a crash leaves the old or the new one."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset} {self.index} {self.last_time}")
        os.replace(tmp, path)


def cursor_path(journal: Path) -> Path:
    return journal.with_suffix(CURSOR_SUFFIX)


def unsent_bytes(journal: Path) -> int:
    """Bytes of the journal the writer has not confirmed yet (0 when fully sent)."""
    try:
        size = journal.stat().st_size
    except FileNotFoundError:
        return 0
    try:
        cursor = Cursor.load(cursor_path(journal))
    except JournalError:
        return size
    if cursor is None:  # nothing confirmed yet; a journal of only its header has nothing to send
        try:
            return max(0, size - read_header(journal)[1])
        except JournalError:
            return size
    return max(0, size - cursor.offset) if cursor.index == 0 else max(1, size - cursor.offset)


def complete_unsent_bytes(journal: Path) -> int:
    """Like :func:`unsent_bytes`, without a torn last line (which waits for its writer)."""
    left = unsent_bytes(journal)
    if left == 0:
        return 0
    try:
        with journal.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - left))
            tail = handle.read()
    except FileNotFoundError:
        return 0
    return len(tail) if tail.endswith(b"\n") else tail.rfind(b"\n") + 1


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

    def add_all(self, records: list[Record]) -> None:
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
                for chunk in written:
                    self.handoff.give(self.path, chunk.start, chunk.end, chunk.records)
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
