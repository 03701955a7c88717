"""Journal chunks on the wire: the body of one request to the agentnn app's bulk ingest.

Why a format of its own and not MLflow's ``log_batch`` JSON: a run's records go to the server
as the journal already holds them (checksummed chunk lines), tens of thousands per request,
compressed, so the server spends its time writing rows, not parsing and checking requests and
passwords. Both sides read this module: the writer's client encodes, the server decodes, and a
chunk is judged by :func:`~agentnn.mlflow_integration.journal.format.decode_chunk` on both.

A body, before compression::

    {"format": 2, "run_id": "<run id>"}\\n        one header line, as a journal's first line
    <crc32> <JSON array of records>\\n            one or more chunk lines, as in the journal

compressed with zlib (``Content-Encoding: deflate``) or gzip (``Content-Encoding: gzip``).
Metric, param and tag records only: a run's end goes through MLflow's own ``update_run``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

from agentnn.mlflow_integration.journal.format import FORMAT_VERSION, decode_chunk, encode_chunk
from agentnn.mlflow_integration.journal.records import EndRecord, Record

__all__ = [
    "API_PREFIX",
    "API_VERSION",
    "CAPABILITIES_PATH",
    "CONTENT_TYPE",
    "ENCODINGS",
    "chunks_path",
    "decode",
    "decompress",
    "encode",
]

API_VERSION = 1
API_PREFIX = f"/agentnn/api/v{API_VERSION}"  # every route of the agentnn app starts here
CAPABILITIES_PATH = f"{API_PREFIX}/capabilities"
CONTENT_TYPE = "application/x-agentnn-journal"
ENCODINGS = {"deflate": zlib.MAX_WBITS, "gzip": 16 + zlib.MAX_WBITS}  # name -> zlib wbits
COMPRESSION_LEVEL = 1  # metric chunks shrink about 4x at level 1; higher levels cost more CPU
# than the bytes they save on a local network


def chunks_path(run_id: str) -> str:
    """The ingest route of one run."""
    return f"{API_PREFIX}/runs/{run_id}/chunks"


def encode(run_id: str, records: Sequence[Record]) -> bytes:
    """One request body (deflate-compressed) carrying ``records`` for ``run_id``.

    Raises:
        ValueError: an end record is among them (the server does not take them).
    """
    if any(type(record) is EndRecord for record in records):
        raise ValueError("end records are not sent to the ingest route")
    header = json.dumps({"format": FORMAT_VERSION, "run_id": run_id}).encode() + b"\n"
    return zlib.compress(header + encode_chunk(list(records)), COMPRESSION_LEVEL)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The body uncompressed, at most ``limit + 1`` bytes (more means too large: the caller
    refuses it without inflating the rest).

    Raises:
        ValueError: an unknown encoding, or bytes that are not what it names.
    """
    wbits = ENCODINGS.get(encoding.strip().lower())
    if wbits is None:
        raise ValueError(f"Content-Encoding {encoding!r} is not one of "
                         f"{', '.join(sorted(ENCODINGS))}")
    inflater = zlib.decompressobj(wbits)
    try:
        payload = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ValueError(f"the body is not {encoding} data: {error}") from None
    if len(payload) <= limit and not inflater.eof:
        raise ValueError(f"the {encoding} data is cut off")
    if inflater.unused_data:
        raise ValueError(f"bytes follow the end of the {encoding} data")
    return payload


def decode(payload: bytes, run_id: str) -> list[Record]:
    """The records of an uncompressed body sent for ``run_id``.

    Raises:
        ValueError: why the body cannot be taken (its header, a chunk's checksum or JSON, a
            record, an end record, or a header naming another run), in one line.
    """
    header_line, newline, rest = payload.partition(b"\n")
    if not newline:
        raise ValueError("no header line")
    try:
        header = json.loads(header_line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("the header line is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("the header line is not a JSON object")
    if header.get("format") != FORMAT_VERSION:
        raise ValueError(f"journal format {header.get('format')!r} is not {FORMAT_VERSION}")
    if header.get("run_id") != run_id:
        raise ValueError(f"the chunk belongs to run {str(header.get('run_id'))[:64]!r}, "
                         f"not to run {run_id!r}")
    if not rest:
        raise ValueError("no chunk after the header")
    if not rest.endswith(b"\n"):
        raise ValueError("the last chunk line has no newline (cut off)")
    records: list[Record] = []
    for number, line in enumerate(rest[:-1].split(b"\n"), start=1):
        try:
            chunk = decode_chunk(line, FORMAT_VERSION)
        except ValueError as error:
            raise ValueError(f"chunk {number}: {error}") from None
        except RecursionError:  # json's reader on arrays nested thousands deep
            raise ValueError(f"chunk {number}: JSON nested too deep") from None
        if any(type(record) is EndRecord for record in chunk):
            raise ValueError(f"chunk {number}: an end record (a run's status is set with "
                             "MLflow's update_run, not sent here)")
        records.extend(chunk)
    return records
