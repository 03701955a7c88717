"""Write :class:`~agentnn.mlflow_integration.importing.source.SourceRun`\\ s into the store.

One run at a time: its experiment (by name, created when missing), the run (with the source's
name and start time), params, tags, every metric point, then its status and end time, and last
the tag ``agentnn.import=done``.

Why a tag set last: a second import of the same source must change nothing, and cheaply. The
run is found again by :data:`~agentnn.mlflow_integration.importing.source.IMPORTED_FROM_TAG`;
a run marked done is left alone without reading its points. A run without the mark was cut
off (or its source was still running): the import resumes it, sending only the params, tags
and points it lacks (points compared as ``(step, timestamp, value)``, as a push compares them).

Why the writer's bulk path: a run from another tracker can hold millions of points. On an SQL
store they go through :mod:`agentnn.mlflow_integration.writer.sql_bulk` (set-based statements,
50,000 points a transaction); on any other store, or on any doubt, the same batches go through
``log_batch`` in chunks of 1,000 metrics, as the writer sends journals.

What MLflow would refuse is changed and said, never dropped in silence: a key with characters
MLflow does not allow is stored under a cleaned name, a param value over 6,000 characters (tag:
8,000) is truncated, secret-looking params and tags are stored as ``***`` (as for runs agentnn
tracks itself). Each such change is one line in :attr:`ImportResult.skipped`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import posixpath
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from agentnn import heap
from agentnn.errors import TrackingError
from agentnn.mlflow_integration.importing.source import IMPORTED_FROM_TAG, MetricSeries, SourceRun
from agentnn.mlflow_integration.run.redaction import REDACTED_KEYS_TAG, redact
from agentnn.mlflow_integration.run.validation import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    TRUNCATION_MARK,
)
from agentnn.mlflow_integration.writer import sql_bulk

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from agentnn.mlflow_integration.store.client import Store

# --- tags ----------------------------------------------------------------------------------
IMPORT_TAG = "agentnn.import"  # "pending" while the import writes, "done" once the run is whole
IMPORT_PENDING, IMPORT_DONE = "pending", "done"

# --- limits --------------------------------------------------------------------------------
POINTS_PER_BATCH = 1000  # MLflow's log_batch limit for metrics in one call
ENTRIES_PER_BATCH = 100  # ... and for params, and for tags
BATCHES_PER_CALL = 50  # batches per native transaction: 50,000 points, a commit (an fsync)
# each; SQLite's write lock is held for a fraction of a second per call
FLOAT64_MAX = sql_bulk.FLOAT64_MAX  # what MLflow stores for ±inf
TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})
BAD_KEY_CHARACTERS = re.compile(r"[^/\w.\- :]")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    """What importing one source run did; counts are of what was sent this time."""

    source: str
    """``<kind>:<source id>``, the value of the ``agentnn.imported_from`` tag."""
    experiment: str
    run_id: str | None = None
    """The MLflow run; None when the source could not be imported (see ``error``)."""
    run_name: str | None = None
    status: str | None = None
    created: bool = False
    """True when this import created the run (False: an earlier import was found)."""
    points: int = 0
    params: int = 0
    tags: int = 0
    skipped: list[str] = field(default_factory=list)
    """What the source held that was not stored as it was, one line each."""
    error: str | None = None
    """One line when nothing of this source was imported."""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.points or self.params or self.tags)

    def summary(self) -> str:
        """What was sent, in a few words, for a table cell."""
        if self.error is not None:
            return "not imported"
        parts = [f"{count} {name}" for name, count in (
            ("points", self.points), ("params", self.params), ("tags", self.tags)) if count]
        return ", ".join(parts) or "nothing new"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}


class _Point(NamedTuple):
    """A metric point with the fields the bulk path and ``log_batch`` read."""

    key: str
    value: float
    timestamp: int
    step: int


class _Entry(NamedTuple):
    """A param or a tag with the fields the bulk path and ``log_batch`` read."""

    key: str
    value: str


# --- the front door ------------------------------------------------------------------------


def write_run(
    store: Store,
    source: SourceRun,
    *,
    on_points: Callable[[int], None] | None = None,
) -> ImportResult:
    """Put ``source`` into ``store``, or finish (or confirm) an earlier import of it.

    ``on_points(n)`` is called as points are stored (for a progress bar).

    Raises:
        TrackingError: the experiment, or an earlier import of this run, is deleted.
        AgentNNError: the store's own errors, translated (see ``Store.errors``).
    """
    heap.hold()  # MLflow, SQLAlchemy and the source's columns: out of the collector's passes
    try:
        with store.errors():
            return _Import(store, source, on_points or (lambda _: None)).run()
    finally:
        heap.release()


class _Import:
    """One import of one source run; each step sends only what the store lacks."""

    def __init__(self, store: Store, source: SourceRun, on_points: Callable[[int], None]) -> None:
        self.store = store
        self.client: MlflowClient = store.client()
        self.source = source
        self.on_points = on_points
        self.skipped = list(source.skipped)

    def run(self) -> ImportResult:
        source = self.source
        experiment_id = _experiment(self.client, source.experiment)
        earlier = _earlier_import(self.client, experiment_id, source.imported_from)
        if earlier is not None and earlier.info.lifecycle_stage == "deleted":
            raise TrackingError(
                f"{source.imported_from} was imported before as run {earlier.info.run_id}, which "
                f"is deleted; restore it (`mlflow runs restore --run-id {earlier.info.run_id}`) "
                "or delete it for good (`mlflow gc`) to import it again"
            )
        result = ImportResult(source=source.imported_from, experiment=source.experiment,
                              run_name=source.run_name)
        if earlier is not None and earlier.data.tags.get(IMPORT_TAG) == IMPORT_DONE:
            return _replace(result, run_id=earlier.info.run_id, status=earlier.info.status,
                            run_name=earlier.info.run_name)
        params = self._params()
        tags = self._tags()
        metrics = self._metrics()
        created = earlier is None
        if earlier is None:
            run = self.client.create_run(
                experiment_id, start_time=self._start_time(), run_name=source.run_name,
                tags={IMPORTED_FROM_TAG: source.imported_from, IMPORT_TAG: IMPORT_PENDING},
            )
        else:
            run = earlier
        run_id = run.info.run_id
        sent_params = self._send_entries(run_id, params, run.data.params, "params")
        sent_tags = self._send_entries(run_id, tags, run.data.tags, "tags")
        points = self._send_points(run_id, metrics, resume=not created)
        status = run.info.status
        if source.status in TERMINAL_STATUSES:
            end_time = self._end_time()
            if status != source.status or run.info.end_time != end_time:
                self.client.set_terminated(run_id, source.status, end_time=end_time)
            status = source.status
            self.client.set_tag(run_id, IMPORT_TAG, IMPORT_DONE)  # last: the run is whole
        return _replace(result, run_id=run_id, run_name=run.info.run_name, status=status,
                        created=created, points=points, params=sent_params, tags=sent_tags,
                        skipped=self.skipped)

    # --- what the run will hold ----------------------------------------------------------

    def _params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for raw_key, raw_value in self.source.params.items():
            key = self._key(raw_key, "param", params)
            if key is not None:
                params[key] = self._limited(key, str(raw_value), "param", MAX_PARAM_VALUE_LENGTH)
        masked, redacted = redact(params)
        if redacted:
            self.skipped.append(f"params stored as ***, their names say or values look like "
                                f"secrets: {', '.join(sorted(redacted))}")
        return masked

    def _tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        for raw_key, raw_value in self.source.tags.items():
            key = self._key(raw_key, "tag", tags)
            if key is not None:
                tags[key] = self._limited(key, str(raw_value), "tag", MAX_TAG_VALUE_LENGTH)
        masked, redacted = redact(tags)
        if redacted:
            self.skipped.append(f"tags stored as ***, their names say or values look like "
                                f"secrets: {', '.join(sorted(redacted))}")
            masked[REDACTED_KEYS_TAG] = ",".join(sorted(redacted))
        masked[IMPORTED_FROM_TAG] = self.source.imported_from
        return masked

    def _metrics(self) -> list[MetricSeries]:
        metrics: dict[str, MetricSeries] = {}
        for raw_key, series in self.source.metrics.items():
            key = self._key(raw_key, "metric", metrics)
            if key is not None and len(series):
                metrics[key] = series if series.key == key else MetricSeries(
                    key, series.steps, series.timestamps_ms, series.values)
        return [metrics[key] for key in sorted(metrics)]

    def _key(self, key: str, kind: str, taken: dict[str, Any]) -> str | None:
        """``key`` as MLflow accepts it; a cleaned name (said) when it does not; None (said)
        when even that is not possible or is already taken."""
        stored = mlflow_key(key)
        if stored == key:
            return key
        if stored is None or stored in taken or stored in self._raw_keys(kind):
            self.skipped.append(f"{kind} {key!r} skipped: MLflow does not accept the name, and "
                                "no cleaned name is free")
            return None
        self.skipped.append(f"{kind} {key!r} stored as {stored!r} (MLflow keys allow letters, "
                            "digits, '_', '-', '.', '/', ' ' and ':')")
        return stored

    def _raw_keys(self, kind: str) -> Iterable[str]:
        if kind == "param":
            return self.source.params
        if kind == "tag":
            return self.source.tags
        return self.source.metrics

    def _limited(self, key: str, value: str, kind: str, limit: int) -> str:
        if len(value) <= limit:
            return value
        self.skipped.append(f"{kind} {key!r} truncated from {len(value)} to MLflow's limit of "
                            f"{limit} characters")
        return value[:limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK

    def _start_time(self) -> int:
        if self.source.start_time_ms is not None:
            return self.source.start_time_ms
        first = [min(series.timestamps_ms) for series in self.source.metrics.values()
                 if len(series)]
        return min(first) if first else int(time.time() * 1000)

    def _end_time(self) -> int:
        if self.source.end_time_ms is not None:
            return self.source.end_time_ms
        last = [max(series.timestamps_ms) for series in self.source.metrics.values()
                if len(series)]
        return max([*last, self._start_time()])

    # --- sending -------------------------------------------------------------------------

    def _send_entries(self, run_id: str, wanted: dict[str, str], have: dict[str, str],
                      kind: str) -> int:
        """Params (never changed: MLflow refuses that) or tags the run lacks."""
        missing = [_Entry(key, value) for key, value in sorted(wanted.items())
                   if (key not in have if kind == "params" else have.get(key) != value)]
        changed = [key for key, value in wanted.items()
                   if kind == "params" and key in have and have[key] != value]
        for key in sorted(changed):
            self.skipped.append(f"param {key!r} kept as stored by the earlier import "
                                "(MLflow params cannot change)")
        chunks = [missing[start:start + ENTRIES_PER_BATCH]
                  for start in range(0, len(missing), ENTRIES_PER_BATCH)]
        batches = [sql_bulk.RunBatch(run_id, params=chunk) if kind == "params"
                   else sql_bulk.RunBatch(run_id, tags=chunk) for chunk in chunks]
        if batches:
            sql_bulk.log_batches(self.client, self.store.uri, batches, report=logger.info)
        return len(missing)

    def _send_points(self, run_id: str, metrics: list[MetricSeries], *, resume: bool) -> int:
        """Every point (or, resuming, every point the run lacks) in bulk transactions.

        Points are made a batch at a time, so only one call's worth of them is alive at once
        (a million point objects would keep the garbage collector busy walking them).
        """
        sent = 0
        pending: list[sql_bulk.RunBatch] = []
        pending_points = 0
        for series in metrics:
            have = None
            if resume:
                have = {_point_key(p.step, p.timestamp, p.value)
                        for p in self.client.get_metric_history(run_id, series.key)}
            for start in range(0, len(series), POINTS_PER_BATCH):
                batch = _points(series, start, start + POINTS_PER_BATCH)
                if have is not None:
                    batch = [p for p in batch if _point_key(p.step, p.timestamp, p.value)
                             not in have]
                if not batch:
                    continue
                pending.append(sql_bulk.RunBatch(run_id, metrics=batch))
                pending_points += len(batch)
                if len(pending) >= BATCHES_PER_CALL:
                    self._send(pending)
                    sent += pending_points
                    self.on_points(pending_points)
                    pending, pending_points = [], 0
        if pending:
            self._send(pending)
            sent += pending_points
            self.on_points(pending_points)
        return sent

    def _send(self, batches: Sequence[sql_bulk.RunBatch]) -> None:
        # SQL stores: one native transaction; anywhere else, or on any doubt, log_batch per batch.
        sql_bulk.log_batches(self.client, self.store.uri, batches, report=logger.info)


# --- small helpers -------------------------------------------------------------------------


def mlflow_key(key: str) -> str | None:
    """``key`` if MLflow accepts it as a metric, param or tag name, else a cleaned version
    (characters MLflow refuses become ``_``, empty and ``.`` path segments dropped, ``..``
    becomes ``__``), or None when nothing is left."""
    if (key and len(key) <= MAX_KEY_LENGTH and KEY_PATTERN.match(key)
            and posixpath.normpath(key) == key and not key.startswith(("/", ".."))
            and key != "."):
        return key
    cleaned = BAD_KEY_CHARACTERS.sub("_", key)
    parts = ["__" if part == ".." else part for part in cleaned.split("/")
             if part not in ("", ".")]
    cleaned = "/".join(parts)[:MAX_KEY_LENGTH].rstrip("/")
    if not cleaned or posixpath.normpath(cleaned) != cleaned:
        return None
    return cleaned


def _points(series: MetricSeries, start: int, stop: int) -> list[_Point]:
    """Points ``start:stop`` of the series, of exact types (the bulk path's fast check wants
    float values and int times and steps)."""
    key = series.key
    return [
        _Point(key, value if type(value) is float else float(value),
               timestamp if type(timestamp) is int else int(timestamp),
               step if type(step) is int else int(step))
        for value, timestamp, step in zip(series.values[start:stop],
                                          series.timestamps_ms[start:stop],
                                          series.steps[start:stop])
    ]


def _point_key(step: int, timestamp: int, value: float) -> tuple[int, int, float | str]:
    """A point as the store keeps it: NaN compared as text, ±inf as MLflow clamps it."""
    if value != value:
        return step, timestamp, "nan"
    if math.isinf(value):
        value = FLOAT64_MAX if value > 0 else -FLOAT64_MAX
    return step, timestamp, value


def _experiment(client: MlflowClient, name: str) -> str:
    """The id of the experiment named ``name``, created when missing."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except MlflowException:  # created meanwhile by another process
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {name!r} is deleted; restore it (`mlflow experiments restore "
            f"--experiment-id {experiment.experiment_id}`) or import with --experiment NAME"
        )
    return str(experiment.experiment_id)


def _earlier_import(client: MlflowClient, experiment_id: str, imported_from: str) -> Run | None:
    """The run an earlier import of this source made in the experiment (deleted ones too)."""
    from mlflow.entities import ViewType

    quote = "'" if "'" not in imported_from else '"'
    if quote in imported_from:  # both quotes in the id: no filter can hold it, so look at all
        token = None
        while True:
            page = client.search_runs([experiment_id], run_view_type=ViewType.ALL,
                                      page_token=token)
            for run in page:
                if run.data.tags.get(IMPORTED_FROM_TAG) == imported_from:
                    return run
            token = page.token
            if not token:
                return None
    clause = f"tags.`{IMPORTED_FROM_TAG}` = {quote}{imported_from}{quote}"
    found = client.search_runs([experiment_id], filter_string=clause,
                               run_view_type=ViewType.ALL, max_results=1)
    return found[0] if found else None


def _replace(result: ImportResult, **changes: Any) -> ImportResult:
    return dataclasses.replace(result, **changes)
