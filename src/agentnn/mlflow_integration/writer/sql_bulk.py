"""The writer's native bulk path: journal batches into an SQL store as set-based statements.

Why it exists: MLflow's ``log_batch`` on an SQL store spends about 0.2 ms of CPU per point, nearly
all of it SQLAlchemy ORM work, so a run's drain and the writer's competition with training for
the cores come down to it. Written as a few Core statements (``executemany``) through MLflow's own
table definitions (``mlflow.store.tracking.dbmodels.models``), one batch costs a few microseconds
a point.

What it keeps: exactly what MLflow 3.17's ``SqlAlchemyStore.log_batch`` (plus the client's
``log_batch``) stores, so the path taken can never be seen in the store:

- the same validation (MLflow's own validators, truncation of long param and tag values);
- metric points: identical points stored once (NaN stored as ``value=0, is_nan=1``, ±inf clamped to
  ±1.7976931348623157e308), re-sent points ignored;
- ``latest_metrics``: per key, a point replaces the row only when ``(step, timestamp, value)`` is
  strictly greater, compared in the order the batch lists them;
- params: a key already logged with another value refuses the whole batch (``MlflowException``,
  INVALID_PARAMETER_VALUE, as MLflow), one with the same value is skipped;
- tags: upserted, the last value of a key in a batch wins;
- the run must exist and be active.

What it does not do itself (the batch goes through ``log_batch`` instead): metrics that carry a
model id (or an active model id in the process, which the client would attach), the
``mlflow.runName`` tag (MLflow also renames the run), any store that is not ``sqlite``,
``postgresql`` or ``mysql``, and any schema revision other than :data:`TESTED_REVISIONS`.

Fallback: anything unexpected (including a refusal) rolls the transaction back and sends the
same batches through ``log_batch``, which then stores them, or raises MLflow's own error. The
path chosen for a store, and why, is said once per store (in the writer's log).

Tested against SQLite and PostgreSQL (tests/tracking/test_native_writer*.py); MySQL takes the
same statements (its upsert and row-locking variants) but has no test server here. A SQLite
store is switched to WAL the first time this path writes to it (see :func:`_write_ahead_log`).
"""

from __future__ import annotations

import logging
import math
import operator
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from sqlalchemy import Select, Table
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.sql.compiler import SQLCompiler
    from sqlalchemy.sql.dml import Insert
    from sqlalchemy.sql.elements import ClauseElement

# The alembic revisions (``alembic_version.version_num``) this path was tested against:
# dc11669786a5 is the head that MLflow 3.17 creates (see mlflow/store/db_migrations/versions).
# A store on any other revision is written through log_batch until it is tested here too.
TESTED_REVISIONS = frozenset({"dc11669786a5"})
NATIVE_DIALECTS = ("sqlite", "postgresql", "mysql")

# MLflow's conventions, copied from SqlAlchemyStore (sanitize_metric_value, set_tag).
FLOAT64_MAX = 1.7976931348623157e308
RUN_NAME_TAG = "mlflow.runName"
SQLITE_BUSY_TIMEOUT_MS = 20000  # MLflow's own PRAGMA busy_timeout for its sessions
SQLITE_CACHE_SIZE = -32768  # KiB per connection (not stored in the file): the metric indexes
# outgrow SQLite's 2 MiB default within a few hundred thousand points
PRAGMAS_SET = "agentnn_sql_bulk_pragmas"  # marks a pooled SQLite connection as configured
KEY_CHUNK = 500  # keys per IN (...) clause, as MLflow chunks them
# PostgreSQL: metric points written in this many transactions at once, on connections of their
# own. Why: PostgreSQL's own work (three index entries and a foreign-key check a row) costs
# several times this process's per point, and one backend uses one core; two transactions keep
# both cores busy while the next rows are read. A resend after a failure stores nothing twice.
IN_FLIGHT = 2
MIN_PART = 5_000  # points: smaller writes go in one transaction
DECIDE_AGAIN_AFTER = 60.0  # seconds before a store whose revision could not be read is re-read

NATIVE, LOG_BATCH = "native", "log_batch"
METRIC_COLUMNS = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")
ENTRY_COLUMNS = ("key", "value", "run_uuid")  # a param's or a tag's row
# positions in a metric row (Final, so a row's item has its own type, not the union of all five)
KEY: Final = 0
VALUE: Final = 1
TIMESTAMP: Final = 2
STEP: Final = 3
IS_NAN: Final = 4
MetricRow = tuple[str, float, int, int, bool, str]

# Benchmarks and tests switch this off to measure or compare the log_batch path.
native_path_enabled = True


class MetricLike(Protocol):
    """A metric point: an MLflow ``Metric``, or a journal's ``MetricRecord``."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def step(self) -> int: ...


class EntryLike(Protocol):
    """A param or a tag: an MLflow ``Param`` or ``RunTag``, or a journal's record of one."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> str: ...


@dataclass(frozen=True)
class RunBatch:
    """One run's share of a write: what ``log_batch(run_id, ...)`` would receive.

    Metrics, params and tags are MLflow entities or anything with the same fields (the
    writer's journal records): the native path reads the fields, and entities are built only
    for ``log_batch``.
    """

    run_id: str
    metrics: Sequence[MetricLike] = ()
    params: Sequence[EntryLike] = ()
    tags: Sequence[EntryLike] = ()


@dataclass(frozen=True)
class PathChoice:
    """The path a store gets, and the reason printed in the writer's log."""

    native: bool
    reason: str


@dataclass
class _StoreState:
    """What is known about one store URI: its engine, its path, what was already reported."""

    choice: PathChoice
    engine: Engine | None = None
    reported: set[str] = field(default_factory=set)
    retry_at: float | None = None  # when an undecidable store (e.g. down) is asked again


_stores: dict[str, _StoreState] = {}
_stores_lock = threading.Lock()
logger = logging.getLogger(__name__)


def say(message: str) -> None:
    """The default report: one line in the writer's log (see the writer package's docstring)."""
    logger.info(message)


# --- the front doors --------------------------------------------------------------------------


def log_batch(
    client: MlflowClient,
    tracking_uri: str,
    run_id: str,
    metrics: Sequence[MetricLike] = (),
    params: Sequence[EntryLike] = (),
    tags: Sequence[EntryLike] = (),
    *,
    report: Callable[[str], None] | None = None,
) -> str:
    """Store one run's batch natively when the store allows it, else with ``client.log_batch``.

    Returns the path taken (``"native"`` or ``"log_batch"``). Errors are those of ``log_batch``.
    """
    return log_batches(client, tracking_uri, [RunBatch(run_id, metrics, params, tags)],
                       report=report)


def log_batches(
    client: MlflowClient,
    tracking_uri: str,
    batches: Sequence[RunBatch],
    *,
    report: Callable[[str], None] | None = None,
) -> str:
    """Store batches of one or several runs in one transaction, or each with ``log_batch``.

    When the native write fails for any reason, every batch is sent through
    ``client.log_batch`` in order (whose errors propagate, as the writer expects). Nothing of a
    failed transaction stays; when metric points went in several transactions at once (see
    :data:`IN_FLIGHT`), a part may have been stored, which the resend stores nothing twice of.
    """
    report = report or say
    state = _state_for(tracking_uri, report) if native_path_enabled else None
    if state is not None and state.choice.native and state.engine is not None:
        reason = _unsupported(batches)
        if reason is None:
            try:
                write_in_parts(state.engine, batches)
                return NATIVE
            except Exception as error:  # every failure falls back to log_batch
                kind = type(error).__name__
                reason = f"the native path failed with {kind}: {_first_line(error)}"
        else:
            kind = reason
        if kind not in state.reported:  # once per store and kind, not once per batch
            state.reported.add(kind)
            report(f"{_masked(tracking_uri)}: batch sent with log_batch, {reason} "
                   "(said once per store)")
    for batch in batches:
        metrics, params, tags = _entities(batch)
        client.log_batch(batch.run_id, metrics=metrics, params=params, tags=tags,
                         synchronous=True)
    return LOG_BATCH


def _entities(batch: RunBatch) -> tuple[list[Metric], list[Param], list[RunTag]]:
    """The batch as MLflow entities, for log_batch (entities are passed on as they are)."""
    from mlflow.entities import Metric, Param, RunTag

    return (
        [m if isinstance(m, Metric) else Metric(m.key, m.value, m.timestamp, m.step)
         for m in batch.metrics],
        [p if isinstance(p, Param) else Param(p.key, p.value) for p in batch.params],
        [t if isinstance(t, RunTag) else RunTag(t.key, t.value) for t in batch.tags],
    )


def choose_path(tracking_uri: str, *, report: Callable[[str], None] | None = None) -> PathChoice:
    """Which path a store gets (decided once per URI and cached; the writer lives long)."""
    return _state_for(tracking_uri, report or say).choice


def prepare(tracking_uri: str, *, report: Callable[[str], None] | None = None) -> None:
    """Decide the store's path and compile its statements ahead of the first batch.

    Why: a writer does this when a new run's journal appears, while training starts; a run
    shorter than the writer's send interval otherwise waits for it at its end.
    """
    if not native_path_enabled:
        return
    state = _state_for(tracking_uri, report or say)
    if state.engine is None or state.engine.dialect.name != "sqlite":
        return
    with state.engine.connect() as connection:
        _sqlite_metric_insert(connection)
        _sqlite_latest_upsert(connection)


def engine_for(tracking_uri: str, *, report: Callable[[str], None] | None = None) -> Engine | None:
    """The engine the native path writes a store with, or None when the store gets log_batch."""
    return _state_for(tracking_uri, report or say).engine


# --- the fence --------------------------------------------------------------------------------


def _state_for(tracking_uri: str, report: Callable[[str], None]) -> _StoreState:
    with _stores_lock:
        state = _stores.get(tracking_uri)
        if state is None or (state.retry_at is not None and time.monotonic() > state.retry_at):
            previous = state
            state = _decide(tracking_uri)
            _stores[tracking_uri] = state
            # A server's path (the agentnn app's ingest or log_batch) is said by app_ingest.
            said_elsewhere = tracking_uri.lower().startswith(("http://", "https://"))
            if (previous is None or previous.choice != state.choice) and not said_elsewhere:
                path = NATIVE if state.choice.native else LOG_BATCH
                report(f"{_masked(tracking_uri)}: {path} path ({state.choice.reason})")
            elif previous is not None:
                state.reported = previous.reported
        return state


def _decide(tracking_uri: str) -> _StoreState:
    dialect = tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    if dialect not in NATIVE_DIALECTS:
        return _StoreState(PathChoice(False, f"not an SQL store with a native path: {dialect}"))
    try:
        import sqlalchemy
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        # MLflow's own engine for this URI (one per URI per process, configured as MLflow
        # configures it), so both paths share one connection pool.
        engine = SqlAlchemyStore._get_or_create_engine(tracking_uri)
        with engine.connect() as connection:
            revision = connection.execute(
                sqlalchemy.text("SELECT version_num FROM alembic_version")
            ).scalar()
    except Exception as error:  # no revision known: log_batch for a while
        return _StoreState(PathChoice(False, f"schema revision unreadable: {_first_line(error)}"),
                           retry_at=time.monotonic() + DECIDE_AGAIN_AFTER)
    if revision not in TESTED_REVISIONS:
        tested = ", ".join(sorted(TESTED_REVISIONS))
        return _StoreState(PathChoice(
            False, f"schema revision {revision} is not one the native path was tested on ({tested})"
        ))
    reason = f"schema revision {revision}"
    if engine.dialect.name == "sqlite":
        reason += f", journal_mode {_write_ahead_log(engine)}"
    return _StoreState(PathChoice(True, reason), engine)


def _write_ahead_log(engine: Engine) -> str:
    """Switch a SQLite store to WAL, once; returns the journal mode it is in.

    In WAL mode a commit costs one fsync of the log instead of several (about 3 ms instead of
    15 ms here), readers never block the writer, and several processes can log to one store. The
    mode stays with the file; MLflow works with it unchanged. It can fail (another process holds
    a lock, or the file system has no shared memory); the store then keeps its mode.
    """
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            mode = connection.exec_driver_sql("PRAGMA journal_mode = WAL").scalar()
            connection.commit()
        return str(mode).lower()
    except Exception as error:  # the store works in its current mode too
        return f"unchanged ({_first_line(error)})"


def _unsupported(batches: Sequence[RunBatch]) -> str | None:
    """Why these batches need log_batch's own handling, or None when the native path fits."""
    from mlflow.tracking.fluent import get_active_model_id

    if get_active_model_id() is not None:
        return "an active model id, which log_batch attaches to metrics"
    for batch in batches:
        if any(getattr(metric, "model_id", None) is not None for metric in batch.metrics):
            return "metrics with a model id"
        if any(tag.key == RUN_NAME_TAG for tag in batch.tags):
            return f"the {RUN_NAME_TAG} tag, which also renames the run"
    return None


def _masked(tracking_uri: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(tracking_uri).render_as_string(hide_password=True)
    except Exception:  # not a database URL
        return tracking_uri.split("@")[-1]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""


# --- the transaction --------------------------------------------------------------------------


def in_flight(tracking_uri: str) -> int:
    """How many transactions :func:`log_batches` writes a store's metric points in at once."""
    state = _stores.get(tracking_uri)
    if state is None or state.engine is None or not native_path_enabled:
        return 1
    return IN_FLIGHT if state.engine.dialect.name == "postgresql" else 1


def write_in_parts(engine: Engine, batches: Sequence[RunBatch]) -> None:
    """Write ``batches`` as :func:`write_batches` does, metric points of PostgreSQL stores in up
    to :data:`IN_FLIGHT` transactions at once (consecutive batches each); returns when every
    part is committed, or raises the first error (other parts may be committed).

    Only batches of metric points alone are split: params and tags keep one transaction, so a
    refusal or a tag's last value is decided as log_batch decides it.
    """
    points = sum(len(batch.metrics) for batch in batches)
    parts = min(IN_FLIGHT, points // MIN_PART)
    if (engine.dialect.name != "postgresql" or parts < 2
            or any(batch.params or batch.tags for batch in batches)):
        write_batches(engine, batches)
        return
    size = -(-points // parts)
    groups: list[list[RunBatch]] = [[]]
    counted = 0
    for batch in batches:
        if counted >= size:
            groups.append([])
            counted = 0
        groups[-1].append(batch)
        counted += len(batch.metrics)
    futures = [_pool().submit(write_batches, engine, group) for group in groups[1:]]
    try:
        write_batches(engine, groups[0])
    finally:
        wait(futures)  # every part ended before the caller moves on, or the first error raises
    for future in futures:
        future.result()


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _stores_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(IN_FLIGHT - 1, thread_name_prefix="agentnn-sql-bulk")
        return _executor


def write_batches(engine: Engine, batches: Sequence[RunBatch]) -> None:
    """Write ``batches`` in one transaction, exactly as log_batch would, or raise and keep none.

    Each batch is validated as log_batch validates it before anything is written; batches of
    several runs, and several batches of one run, apply in order within the transaction.
    """
    prepared = [_prepare(batch) for batch in batches]
    dialect = engine.dialect.name
    with engine.connect() as connection:
        if dialect == "sqlite":
            # As MLflow's sessions; then take the write lock up front, so no read in this
            # transaction can meet a concurrent writer's commit (SQLITE_BUSY on upgrade).
            if not connection.info.get(PRAGMAS_SET):  # once per pooled connection
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                connection.exec_driver_sql(f"PRAGMA cache_size = {SQLITE_CACHE_SIZE}")
                connection.info[PRAGMAS_SET] = True
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            _check_runs_active(connection, {batch.run_id for batch in prepared})
            if dialect == "postgresql":
                # One statement per run for all its points (see _write_metrics_postgresql);
                # the order of params, points and tags changes no outcome: any refusal rolls
                # the whole transaction back, and tags keep their own order.
                for batch in prepared:
                    _write_params(connection, batch)
                    _write_tags(connection, batch)
                for batch in _merged_by_run(prepared):
                    _write_metrics(connection, batch)
            else:
                for batch in prepared:
                    _write_params(connection, batch)
                    _write_metrics(connection, batch)
                    _write_tags(connection, batch)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise


def _merged_by_run(prepared: list[_Prepared]) -> list[_Prepared]:
    """Each run's metric rows of all batches, in batch order (params and tags left out).

    MLflow applies batches one after the other; per key, ``latest_metrics`` ends at the first
    of the greatest points either way, so one pass over the rows in order gives the same row.
    """
    merged: dict[str, _Prepared] = {}
    for batch in prepared:
        target = merged.setdefault(batch.run_id, _Prepared(batch.run_id, [], [], []))
        target.metric_rows.extend(batch.metric_rows)
    return list(merged.values())


@dataclass
class _Prepared:
    """A batch after MLflow's validation: rows ready for executemany."""

    run_id: str
    metric_rows: list[MetricRow]  # in METRIC_COLUMNS order, in batch order
    params: list[tuple[str, str]]
    tags: list[tuple[str, str]]


_valid_metric_keys: set[str] = set()


def _prepare(batch: RunBatch) -> _Prepared:
    """Validate as the client's and the store's log_batch do, and build the rows."""
    from mlflow.entities import Param
    from mlflow.tracking.metric_value_conversion_utils import (
        convert_metric_value_to_float_if_possible,
    )
    from mlflow.utils.validation import (
        _validate_batch_log_data,
        _validate_batch_log_limits,
        _validate_metric,
        _validate_param_keys_unique,
        _validate_run_id,
    )

    run_id = batch.run_id
    _validate_run_id(run_id)
    # Params and tags through MLflow's validators (which also truncate long values); metrics
    # below, with the key checked once per distinct key, which is what dominates the cost.
    stringified = [Param(p.key, str(p.value)) for p in batch.params]  # as MlflowClient does
    _, params, tags = _validate_batch_log_data([], stringified, list(batch.tags))
    _validate_batch_log_limits(batch.metrics, params, tags)
    _validate_param_keys_unique(params)

    # Identical points are not removed here: the insert skips a row whose primary key (every
    # column) is stored already, within one statement as well.
    rows: list[MetricRow] = [(m.key, m.value, m.timestamp, m.step, False, run_id)
                             for m in batch.metrics]
    # Nearly every batch holds finite floats at valid times under keys seen before: checked a
    # column at a time in C loops (map, set, sum, min), a fraction of the row-by-row path below.
    # A sum that is not finite means a NaN or ±inf, or finite values that overflow it: either
    # way the row-by-row path decides.
    keys, values, timestamps, steps, _, _ = zip(*rows) if rows else ((),) * 6
    if not rows or (
        set(keys) <= _valid_metric_keys and set(map(type, values)) == {float}
        and math.isfinite(sum(values)) and set(map(type, timestamps)) == {int}
        and min(timestamps) >= 0 and set(map(type, steps)) == {int}
    ):
        return _Prepared(run_id, rows, [(p.key, p.value) for p in params],
                         [(t.key, t.value) for t in tags])

    rows = []
    append = rows.append
    valid_keys = _valid_metric_keys
    for index, metric in enumerate(batch.metrics):
        key, value, timestamp, step = metric.key, metric.value, metric.timestamp, metric.step
        if type(value) is not float:
            value = convert_metric_value_to_float_if_possible(value)
        if not (
            key in valid_keys
            and type(value) is float
            and type(timestamp) is int and timestamp >= 0
            and type(step) is int
        ):
            _validate_metric(key, value, timestamp, step, path=f"metrics[{index}]")
            if type(key) is str:
                valid_keys.add(key)
        # SqlAlchemyStore.sanitize_metric_value: NaN stored as 0 with is_nan; ±inf clamped.
        is_nan = value != value
        if is_nan:
            value = 0.0
        elif value == math.inf:
            value = FLOAT64_MAX
        elif value == -math.inf:
            value = -FLOAT64_MAX
        append((key, value, timestamp, step, is_nan, run_id))  # the metrics primary key
    return _Prepared(run_id, rows, [(p.key, p.value) for p in params],
                     [(t.key, t.value) for t in tags])


def _tables() -> tuple[Table, Table, Table, Table, Table]:
    """MLflow's runs, metrics, latest_metrics, params and tags tables, imported lazily."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )

    return (SqlRun.__table__, SqlMetric.__table__, SqlLatestMetric.__table__,
            SqlParam.__table__, SqlTag.__table__)


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i:i + KEY_CHUNK] for i in range(0, len(items), KEY_CHUNK)]


def _check_runs_active(connection: Connection, run_ids: set[str]) -> None:
    """Refuse, as MLflow's _get_run and _check_run_is_active do, a missing or deleted run."""
    import sqlalchemy
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

    def query() -> Select[Any]:
        runs = _tables()[0]
        return sqlalchemy.select(runs.c.lifecycle_stage).where(
            runs.c.run_uuid == sqlalchemy.bindparam("run_uuid")
        )

    if connection.dialect.name == "sqlite":
        # SQL text compiled once per process: every send asks, and compiling costs more than
        # the query (SQLAlchemy's own cache lives in the engine, and a process's first send
        # to a store is the one a short run's end waits for).
        sql, _ = _compiled_statement(connection, "run_stage", lambda _: query())
        found = {run_id: connection.exec_driver_sql(sql, (run_id,)).scalar()
                 for run_id in sorted(run_ids)}
    else:
        found = {run_id: connection.execute(query(), {"run_uuid": run_id}).scalar()
                 for run_id in sorted(run_ids)}
    for run_id in sorted(run_ids):
        if found[run_id] is None:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
        if found[run_id] != LifecycleStage.ACTIVE:
            raise MlflowException(
                f"The run {run_id} must be in the 'active' state. "
                f"Current state is {found[run_id]}.",
                INVALID_PARAMETER_VALUE,
            )


def _write_params(connection: Connection, batch: _Prepared) -> None:
    """New params inserted; a key logged before with another value refuses the batch."""
    if not batch.params:
        return
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    params = _tables()[3]
    sqlite = connection.dialect.name == "sqlite"
    existing = _stored_params(connection, batch)
    changed = [
        {"key": key, "old_value": existing[key], "new_value": value}
        for key, value in batch.params if key in existing and existing[key] != value
    ]
    if changed:
        raise MlflowException(
            "Changing param values is not allowed. Params were already"
            f" logged='{changed}' for run ID='{batch.run_id}'.",
            INVALID_PARAMETER_VALUE,
        )
    new = [{"run_uuid": batch.run_id, "key": key, "value": value}
           for key, value in batch.params if key not in existing]
    if new and sqlite:
        sql, order = _compiled_statement(connection, "param_insert", lambda _: params.insert(),
                                         ENTRY_COLUMNS)
        connection.exec_driver_sql(sql, [_positional(order, **row) for row in new])
    elif new:
        connection.execute(params.insert(), new)


def _stored_params(connection: Connection, batch: _Prepared) -> dict[str, str]:
    """The values already stored for the batch's param keys."""
    import sqlalchemy

    params = _tables()[3]
    if connection.dialect.name != "sqlite":
        existing: dict[str, str] = {}
        for keys in _chunks([key for key, _ in batch.params]):
            existing.update(connection.execute(
                sqlalchemy.select(params.c.key, params.c.value)
                .where(params.c.run_uuid == batch.run_id, params.c.key.in_(keys))
            ).all())
        return existing
    # One lookup per key, compiled once per process as for metrics (see _check_runs_active).
    sql, order = _compiled_statement(connection, "param_value", lambda _: sqlalchemy.select(
        params.c.value).where(params.c.run_uuid == sqlalchemy.bindparam("run_uuid"),
                              params.c.key == sqlalchemy.bindparam("key")))
    values = {key: connection.exec_driver_sql(
        sql, _positional(order, key=key, run_uuid=batch.run_id)).scalar()
        for key, _ in batch.params}
    return {key: value for key, value in values.items() if value is not None}


def _write_metrics(connection: Connection, batch: _Prepared) -> None:
    """Points inserted unless already stored; latest_metrics moved forward as MLflow does."""
    if not batch.metric_rows:
        return
    metrics = _tables()[1]
    if connection.dialect.name == "sqlite":
        # The driver's executemany with plain tuples: SQLAlchemy's per-row parameter handling
        # would cost more than SQLite's insert itself. Same statement, same stored values.
        sql, order = _sqlite_metric_insert(connection)
        connection.exec_driver_sql(sql, _in_order(batch.metric_rows, order))
    elif connection.dialect.name == "postgresql":
        _write_metrics_postgresql(connection, batch.metric_rows)
    else:  # SQLAlchemy batches executemany into multi-row INSERTs (insertmanyvalues)
        connection.execute(_insert_ignoring_duplicates(connection, metrics),
                           [dict(zip(METRIC_COLUMNS, row)) for row in batch.metric_rows])
    _update_latest(connection, batch)


def _write_metrics_postgresql(connection: Connection, rows: list[MetricRow]) -> None:
    """One run's points in one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING``.

    Why: psycopg 3 sends an executemany as one INSERT per row (pipelined), psycopg2 as pages of
    multi-row INSERTs, and either adapts a Python list element by element; the driver's
    per-row work then costs more than PostgreSQL's insert. Each column goes instead as one text
    parameter in PostgreSQL's array syntax (built with ``join``), which the server parses in C;
    the run id, the same in every row, goes once. The values are MLflow's already (NaN stored as
    0 with ``is_nan``, ±inf clamped), and ``repr`` of a float reads back as the same float.

    The rows go first as a plain ``INSERT`` in a savepoint, and only when a row is stored already
    (a resend: ``IntegrityError``) again with ``ON CONFLICT DO NOTHING``. Why: ``ON CONFLICT``
    looks each row up in the primary key before inserting it, which cost PostgreSQL about a
    fifth more than the plain insert here; a resend is rare. Either way the same rows are stored.
    """
    import sqlalchemy
    from sqlalchemy.exc import IntegrityError

    metrics = _tables()[1]
    quoted = {key: _array_text(key) for key in {row[KEY] for row in rows}}
    columns = ", ".join(f'"{name}"' for name in METRIC_COLUMNS)
    insert = (
        f'INSERT INTO "{metrics.name}" ({columns}) '
        "SELECT k, v, t, s, n, CAST(:run AS varchar) FROM unnest("
        "CAST(:keys AS varchar[]), CAST(:vals AS float8[]), CAST(:times AS bigint[]), "
        "CAST(:steps AS bigint[]), CAST(:nans AS boolean[])) AS u(k, v, t, s, n)"
    )
    keys, values_, timestamps, steps, nans, _ = zip(*rows)  # columns, built in C loops
    values = {
        "run": rows[0][-1],
        "keys": "{" + ",".join(map(quoted.__getitem__, keys)) + "}",
        "vals": "{" + ",".join(map(repr, values_)) + "}",
        "times": "{" + ",".join(map(str, timestamps)) + "}",
        "steps": "{" + ",".join(map(str, steps)) + "}",
        "nans": "{" + ",".join(["t" if nan else "f" for nan in nans]) + "}",
    }
    try:
        with connection.begin_nested():
            connection.execute(sqlalchemy.text(insert), values)
    except IntegrityError:  # a point stored already (or twice in these rows)
        connection.execute(sqlalchemy.text(insert + " ON CONFLICT DO NOTHING"), values)


def _array_text(value: str) -> str:
    """A text as one element of PostgreSQL's array syntax: quoted, ``\\`` and ``"`` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_compiled: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}


def _compiled_statement(
    connection: Connection,
    name: str,
    build: Callable[[Connection], ClauseElement],
    columns: Sequence[str] = METRIC_COLUMNS,
) -> tuple[str, tuple[str, ...]]:
    """A statement's SQL text for this dialect, and the order of its positional values
    (``columns``: those an insert writes)."""
    cache_key = (connection.dialect.name, name)
    if cache_key not in _compiled:
        # a SELECT or DML statement compiles with an SQLCompiler (typed as the base Compiled)
        compiled = cast("SQLCompiler", build(connection).compile(
            dialect=connection.dialect, column_keys=list(columns)
        ))
        if not compiled.positional or compiled.positiontup is None:
            raise ValueError(f"the {connection.dialect.name} driver takes no positional values")
        _compiled[cache_key] = (compiled.string, tuple(compiled.positiontup))
    return _compiled[cache_key]


def _sqlite_metric_insert(connection: Connection) -> tuple[str, tuple[str, ...]]:
    return _compiled_statement(
        connection, "metrics", lambda c: _insert_ignoring_duplicates(c, _tables()[1])
    )


def _sqlite_latest_upsert(connection: Connection) -> tuple[str, tuple[str, ...]]:
    return _compiled_statement(connection, "latest", _latest_upsert)


def _in_order(rows: list[MetricRow], order: tuple[str, ...]) -> Sequence[tuple[object, ...]]:
    """Rows as the driver's positional values (already so when the columns line up)."""
    if order == METRIC_COLUMNS:
        return rows
    positions = [METRIC_COLUMNS.index(name) for name in order]
    return [tuple(row[i] for i in positions) for row in rows]


def _insert_ignoring_duplicates(connection: Connection, table: Table) -> Insert:
    """``INSERT`` that skips rows whose primary key is already stored (a re-sent point)."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table).on_conflict_do_nothing()
    if dialect == "mysql":
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        statement = mysql_insert(table)
        # A no-op update on a duplicate key; unlike INSERT IGNORE it hides no other error.
        return statement.on_duplicate_key_update(run_uuid=statement.inserted.run_uuid)
    raise ValueError(f"no native insert for the {dialect} dialect")


def _update_latest(connection: Connection, batch: _Prepared) -> None:
    """MLflow's _update_latest_metrics_if_necessary, with the same outcome.

    MLflow walks the batch in order and lets a point replace a key's latest row only when its
    ``(step, timestamp, value)`` is strictly greater. That is: per key, the first of the batch's
    greatest points, and it replaces the stored row only if strictly greater than it. Points
    already stored can be compared again harmlessly: the stored row is at least as great.
    """
    by_key: dict[str, list[MetricRow]] = {}
    for row in batch.metric_rows:
        group = by_key.get(row[KEY])
        if group is None:
            by_key[row[KEY]] = [row]
        else:
            group.append(row)
    # max() keeps the first of equal greatest rows, as MLflow's strictly-greater walk does
    greatest = operator.itemgetter(STEP, TIMESTAMP, VALUE)
    rows = [max(by_key[key], key=greatest)
            for key in sorted(by_key)]  # one lock order for every writer
    dialect = connection.dialect.name
    if dialect == "sqlite":
        sql, order = _sqlite_latest_upsert(connection)
        connection.exec_driver_sql(sql, _in_order(rows, order))
    elif dialect == "postgresql":
        connection.execute(_latest_upsert(connection),
                           [dict(zip(METRIC_COLUMNS, row)) for row in rows])
    else:
        _update_latest_row_by_row(connection, batch.run_id, rows)


def _latest_upsert(connection: Connection) -> Insert:
    """Insert a key's latest row, or overwrite it when the new one is strictly greater."""
    import sqlalchemy

    latest = _tables()[2]
    statement: sqlite.Insert | postgresql.Insert
    if connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(latest)
    else:
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        statement = postgresql_insert(latest)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[latest.c.key, latest.c.run_uuid],
        set_={"value": new.value, "timestamp": new.timestamp, "step": new.step,
              "is_nan": new.is_nan},
        where=sqlalchemy.tuple_(new.step, new.timestamp, new.value)
        > sqlalchemy.tuple_(latest.c.step, latest.c.timestamp, latest.c.value),
    )


def _update_latest_row_by_row(connection: Connection, run_id: str, rows: list[MetricRow]) -> None:
    """For databases without a conditional upsert: read the rows FOR UPDATE, as MLflow does."""
    import sqlalchemy

    latest = _tables()[2]
    stored: dict[str, tuple[int, int, float]] = {}
    for chunk in _chunks([row[KEY] for row in rows]):
        query = (
            sqlalchemy.select(latest.c.key, latest.c.step, latest.c.timestamp, latest.c.value)
            .where(latest.c.run_uuid == run_id, latest.c.key.in_(chunk))
            .order_by(latest.c.run_uuid, latest.c.key)
            .with_for_update()
        )
        for key, step, timestamp, value in connection.execute(query):
            stored[key] = (step, timestamp, value)
    new = [dict(zip(METRIC_COLUMNS, row)) for row in rows if row[KEY] not in stored]
    if new:
        connection.execute(latest.insert(), new)
    changed = [
        {"b_run": run_id, "b_key": row[KEY], "b_value": row[VALUE],
         "b_timestamp": row[TIMESTAMP], "b_step": row[STEP], "b_is_nan": row[IS_NAN]}
        for row in rows
        if row[KEY] in stored and (row[STEP], row[TIMESTAMP], row[VALUE]) > stored[row[KEY]]
    ]
    if changed:
        update = (
            latest.update()
            .where(latest.c.run_uuid == sqlalchemy.bindparam("b_run"),
                   latest.c.key == sqlalchemy.bindparam("b_key"))
            .values(value=sqlalchemy.bindparam("b_value"),
                    timestamp=sqlalchemy.bindparam("b_timestamp"),
                    step=sqlalchemy.bindparam("b_step"),
                    is_nan=sqlalchemy.bindparam("b_is_nan"))
        )
        connection.execute(update, changed)


def _write_tags(connection: Connection, batch: _Prepared) -> None:
    """Tags upserted; when a key comes twice in a batch, its last value wins, as in MLflow."""
    if not batch.tags:
        return
    import sqlalchemy

    tags = _tables()[4]
    final = dict(batch.tags)
    if connection.dialect.name == "sqlite":
        # One upsert (compiled once per process): a run's first tags are often sent at its
        # end, where compiling the select, insert and update below costs 15-20 ms.
        sql, order = _compiled_statement(connection, "tag_upsert", _tag_upsert, ENTRY_COLUMNS)
        connection.exec_driver_sql(sql, [
            _positional(order, key=key, value=value, run_uuid=batch.run_id)
            for key, value in final.items()
        ])
        return
    stored: set[str] = set()
    for keys in _chunks(sorted(final)):
        stored.update(connection.execute(
            sqlalchemy.select(tags.c.key)
            .where(tags.c.run_uuid == batch.run_id, tags.c.key.in_(keys))
        ).scalars())
    new = [{"run_uuid": batch.run_id, "key": key, "value": value}
           for key, value in final.items() if key not in stored]
    if new:
        connection.execute(tags.insert(), new)
    updated = [{"b_run": batch.run_id, "b_key": key, "b_value": value}
               for key, value in final.items() if key in stored]
    if updated:
        connection.execute(
            tags.update()
            .where(tags.c.run_uuid == sqlalchemy.bindparam("b_run"),
                   tags.c.key == sqlalchemy.bindparam("b_key"))
            .values(value=sqlalchemy.bindparam("b_value")),
            updated,
        )


def _tag_upsert(connection: Connection) -> Insert:
    """Insert a tag, or overwrite the value of the run's tag of that key (SQLite)."""
    from sqlalchemy.dialects.sqlite import insert

    tags = _tables()[4]
    statement = insert(tags)
    return statement.on_conflict_do_update(
        index_elements=[tags.c.key, tags.c.run_uuid], set_={"value": statement.excluded.value}
    )


def _positional(order: tuple[str, ...], **values: object) -> tuple[object, ...]:
    """Named values in a compiled statement's positional order."""
    return tuple(values[name] for name in order)
