"""The journal file: its header, checksummed chunks, the writer's cursor and set-aside copies.

Everything that reads a journal goes through here (the writer, ``agentnn model sync``, the
SDK's view of unsent points), so a damaged or torn chunk is judged the same way everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from agentnn.errors import DamagedJournalError, JournalError
from agentnn.mlflow_integration.journal.process import TrainingProcess
from agentnn.mlflow_integration.journal.records import (
    EndRecord,
    MetricRecord,
    Record,
    as_integer,
    as_text,
    decode_record,
)

if TYPE_CHECKING:
    from agentnn.mlflow_integration.journal.buffered import Handoff

FORMAT_VERSION = 2
JOURNAL_SUFFIX = ".jsonl"
CURSOR_SUFFIX = ".cursor"
DAMAGED_SUFFIX = ".damaged"  # appended to the journal's name: "<run>.<ns>.jsonl.damaged"
REJECTED_SUFFIX = ".rejected.jsonl"
MAX_RECORDS_PER_CHUNK = 5000  # bounds one write and one parse
CHECKSUM_WIDTH = 8  # hex digits of a crc32
HEADER_GRACE = 60.0  # seconds a header without its newline may still be in the middle of a write
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
        data: dict[str, object] = {
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
            run_id=as_text(data.get("run_id")),
            tracking_uri=as_text(data.get("tracking_uri")),
            created=as_integer(data.get("created", 0)),
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


def _records(items: object) -> list[Record]:
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


def only_bookkeeping_unsent(journal: Path) -> bool:
    """Whether all the journal has left to send is an end record whose status the training
    process already set (the store has every record and the status).

    Why: a run ends by draining its journal, setting its status and then appending that end
    record; handing a writer process the folder at exit just for it would cost the machine an
    MLflow import (seconds of CPU). The exiting process's writer thread reads it in a last pass
    (``WriterProcess.hand_over``), or else the folder's next writer does.
    """
    left = unsent_bytes(journal)
    if left == 0 or complete_unsent_bytes(journal) != left:
        return False
    try:
        header, header_end = read_header(journal)
        cursor = Cursor.load(cursor_path(journal))
        offset, skip = (header_end, 0) if cursor is None else (cursor.offset, cursor.index)
        chunks = list(scan_chunks(journal, offset, header.format))
    except (JournalError, OSError):
        return False
    if any(chunk.damage is not None for chunk in chunks):
        return False  # the writer's to set aside
    records = [record for chunk in chunks for record in chunk.records][skip:]
    return bool(records) and all(isinstance(r, EndRecord) and r.applied for r in records)


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
