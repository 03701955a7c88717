"""One request of the bulk ingest: a run's journal chunks checked whole, then written in one
transaction through the writer's native bulk path.

Why all or nothing: a client resends a request whose answer it did not get, and a refusal must
leave the tables as they were, so that what the client keeps in its journal and what the store
holds never disagree. Everything that can be judged before writing (size, compression,
checksums, records, MLflow's own validation of keys and values) is judged first; the write is
:func:`agentnn.mlflow_integration.writer.sql_bulk.write_batches`, one transaction that rolls
back on any error. A resent request stores nothing twice: a metric point already stored is
skipped by its primary key, a param with the same value is skipped, a tag is set again.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentnn.mlflow_integration.journal import transfer
from agentnn.mlflow_integration.journal.records import MetricRecord, ParamRecord, Record, TagRecord
from agentnn.mlflow_integration.writer import sql_bulk

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["LIMITS", "Answer", "ingest", "native_engine"]

# What one request may carry; sent in the capabilities so clients cut their chunks to fit.
MAX_BODY_BYTES = 16 * 1024 * 1024  # compressed
MAX_PAYLOAD_BYTES = 32 * 1024 * 1024  # uncompressed: bounds what a small body may inflate to
# (the writer's 20,000 records a request take 1-6 MB)
MAX_RECORDS = 100_000
LIMITS = {"max_body_bytes": MAX_BODY_BYTES, "max_payload_bytes": MAX_PAYLOAD_BYTES,
          "max_records": MAX_RECORDS}
# MLflow's log_batch limits: write_batches validates each batch as log_batch would.
METRICS_PER_BATCH, ENTRIES_PER_BATCH = 1000, 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """The HTTP status and JSON body of one ingest request."""

    status: int
    body: dict[str, object]

    @classmethod
    def refusal(cls, status: int, code: str, message: str) -> Answer:
        """An error in the JSON form MLflow's REST API uses, which MLflow's client reads."""
        return cls(status, {"error_code": code, "message": message})


def native_engine() -> Engine | None:
    """The engine the native bulk path writes this server's tracking store with, or None when
    the store has no native path (not SQL, or a schema revision it was not tested on)."""
    from mlflow.server.handlers import _get_tracking_store

    uri = getattr(_get_tracking_store(), "db_uri", None)
    if not isinstance(uri, str):
        return None
    engine = sql_bulk.engine_for(uri, report=logger.info)
    _freeze_heap_once()
    return engine


_heap_frozen = False


def _freeze_heap_once() -> None:
    """Keep the server's long-lived objects (MLflow, SQLAlchemy, the store) out of the garbage
    collector's passes, once they are all loaded.

    Why: decoding a request makes tens of thousands of records, which sets off collections that
    walk every object of the process; with MLflow's server loaded, that cost 20 µs a record here
    (a 25,000-record request spent 0.5 s in the collector, 0.1 s without it). The server lives
    as long as these objects, so they are never handed back (see :mod:`agentnn.heap` for the
    same reasoning in a training process).
    """
    global _heap_frozen
    if not _heap_frozen:
        gc.freeze()
        _heap_frozen = True


def ingest(engine: Engine, run_id: str, body: bytes, encoding: str) -> Answer:
    """Check and write one request's records for ``run_id``; the caller checked permission."""
    if len(body) > MAX_BODY_BYTES:
        return _too_large(f"the body has {len(body):,} bytes, more than {MAX_BODY_BYTES:,}")
    try:
        payload = transfer.decompress(body, encoding, MAX_PAYLOAD_BYTES)
    except ValueError as error:
        return Answer.refusal(400, "MALFORMED_REQUEST", str(error))
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _too_large(f"the body inflates to more than {MAX_PAYLOAD_BYTES:,} bytes")
    try:
        records = transfer.decode(payload, run_id)
    except ValueError as error:
        return Answer.refusal(400, "MALFORMED_REQUEST", str(error))
    if len(records) > MAX_RECORDS:
        return _too_large(f"{len(records):,} records, more than {MAX_RECORDS:,}")
    batches = _batches(run_id, records)
    if any("\x00" in entry.value for batch in batches for entry in (*batch.params, *batch.tags)):
        # PostgreSQL's text holds no NUL (psycopg2 refuses it before the database sees it)
        return Answer.refusal(400, "INVALID_PARAMETER_VALUE",
                              "a param or tag value holds a NUL character, which the store "
                              "cannot keep")
    try:
        sql_bulk.write_batches(engine, batches)
    except Exception as error:
        return _store_refusal(error)
    return Answer(200, {
        "run_id": run_id, "records": len(records),
        "metrics": sum(len(b.metrics) for b in batches),
        "params": sum(len(b.params) for b in batches),
        "tags": sum(len(b.tags) for b in batches),
    })


def _batches(run_id: str, records: Sequence[Record]) -> list[sql_bulk.RunBatch]:
    """The records cut into log_batch-sized batches: params, then metrics, then tags (tags
    keep their order, so the last value of a key still wins)."""
    metrics = [r for r in records if type(r) is MetricRecord]
    params = [r for r in records if type(r) is ParamRecord]
    tags = [r for r in records if type(r) is TagRecord]
    return (
        [sql_bulk.RunBatch(run_id, params=params[i:i + ENTRIES_PER_BATCH])
         for i in range(0, len(params), ENTRIES_PER_BATCH)]
        + [sql_bulk.RunBatch(run_id, metrics=metrics[i:i + METRICS_PER_BATCH])
           for i in range(0, len(metrics), METRICS_PER_BATCH)]
        + [sql_bulk.RunBatch(run_id, tags=tags[i:i + ENTRIES_PER_BATCH])
           for i in range(0, len(tags), ENTRIES_PER_BATCH)]
    )


def _too_large(message: str) -> Answer:
    return Answer.refusal(413, "BAD_REQUEST", f"{message}; see the capabilities' limits")


def _store_refusal(error: Exception) -> Answer:
    """MLflow's refusal as MLflow's REST API words it; a database error as retry-later."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import DataError, InterfaceError, OperationalError

    if isinstance(error, MlflowException):
        return Answer.refusal(error.get_http_status_code(), str(error.error_code),
                              error.message)
    if isinstance(error, DataError):  # a value the database cannot hold (a NUL in a text)
        return Answer.refusal(400, "INVALID_PARAMETER_VALUE",
                              f"the database refused a value: {_first_line(error.orig)}")
    if isinstance(error, (OperationalError, InterfaceError, ConnectionError)):
        return Answer.refusal(503, "TEMPORARILY_UNAVAILABLE",
                              f"the database did not answer: {type(error).__name__}")
    logger.exception("ingest failed")
    return Answer.refusal(500, "INTERNAL_ERROR", f"the write failed: {type(error).__name__}")


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
