"""``ExperimentTracker``: runs, params and metrics in MLflow at almost no cost to the training loop.

    from agentnn.mlflow_integration import ExperimentTracker

    tracker = ExperimentTracker("advanced_training")
    with tracker.start_run(params={"lr": 1e-3}) as run:
        for step in range(1000):
            run.log_metrics({"loss": loss, "acc": acc}, step=step)
    best = tracker.best_run("val_loss", mode="min")

``log_*`` calls check their input, then queue records in memory; a daemon thread appends them to
the run's journal on local disk and a low-priority writer process sends the journal to the store
(see :mod:`agentnn.mlflow_integration.journal` and :mod:`~agentnn.mlflow_integration.writer`).
Leaving the ``with`` block waits until the store has every record, then sets the run's status:
FINISHED, FAILED when an exception left the block, KILLED on Ctrl-C.

What the tracker has to say goes two ways, because a library must not decide where its
caller's terminal output goes:

- what the caller must act on (the run went to the fallback store, the store has not confirmed
  every record, it refused some, the status is not set yet) is a
  :class:`~agentnn.errors.TrackingWarning` raised with :func:`warnings.warn`: a script sees it
  on stderr with no set-up, and can filter it or turn it into an error like any warning;
- progress (``sending run … to the store… 40%`` during a long drain) is logged at INFO on the
  ``agentnn.mlflow_integration.experiment_tracking`` logger, silent until the application
  asks for it, e.g. ``logging.basicConfig(level=logging.INFO)``.

The ``agentnn`` command shows both on stderr (see :mod:`agentnn.cli.console`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from agentnn import config, heap
from agentnn.errors import (
    InvalidArgumentError,
    ParamChangedError,
    StoreUnreachableError,
    TrackingError,
    TrackingWarning,
)
from agentnn.mlflow_integration.journal.buffered import (
    HANDOFF,
    BufferedJournal,
    new_header,
    new_journal_path,
)
from agentnn.mlflow_integration.journal.format import rejected_path
from agentnn.mlflow_integration.journal.records import (
    EndRecord,
    MetricRecord,
    ParamRecord,
    TagRecord,
)
from agentnn.mlflow_integration.offline import fallback as offline
from agentnn.mlflow_integration.run.context import GitQuery, automatic_tags, generate_run_name
from agentnn.mlflow_integration.run.queries import best_run_query
from agentnn.mlflow_integration.run.redaction import REDACTED_KEYS_TAG, redact
from agentnn.mlflow_integration.run.validation import (
    check_key,
    flatten,
    metric_value,
    param_value,
    tag_value,
)
from agentnn.mlflow_integration.store.classify import is_already_exists
from agentnn.mlflow_integration.store.client import Store
from agentnn.mlflow_integration.writer.owner import WriterProcess

if TYPE_CHECKING:
    from mlflow.entities import Run

    from agentnn.errors import AgentNNError

NONFINITE_TAG = "agentnn.nonfinite_metric_points"  # how many NaN/inf points the run logged
PROGRESS_AFTER = 1.0  # seconds of draining before a progress line is logged
PROGRESS_STEP = 10  # percent between progress lines: a handful of lines per drain, in any log
DRAIN_STACKLEVEL = 3  # a warning as a run ends names the line that ended it (run.end, or `with`)

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """A finished or running run as plain data."""

    run_id: str
    run_name: str | None
    status: str
    experiment_id: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None

    @classmethod
    def from_mlflow(cls, run: Run) -> RunSummary:
        info, data = run.info, run.data
        return cls(
            run_id=info.run_id,
            run_name=info.run_name,
            status=info.status,
            experiment_id=info.experiment_id,
            params=dict(data.params),
            metrics=dict(data.metrics),
            tags=dict(data.tags),
            start_time=_from_ms(info.start_time),
            end_time=_from_ms(info.end_time),
        )


def _from_ms(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp / 1000, tz=timezone.utc) if timestamp else None


def _now_ms() -> int:
    return int(time.time() * 1000)


class TrackedRun:
    """The handle ``start_run`` yields: log calls are checked here and queued, never sent here."""

    def __init__(
        self,
        tracker: ExperimentTracker,
        run_id: str,
        run_name: str | None,
        journal: BufferedJournal,
        logged_params: dict[str, str],
    ) -> None:
        self.run_id = run_id
        self.run_name = run_name
        self._tracker = tracker
        self._journal = journal
        self._params = logged_params
        self._valid_keys: set[str] = set()
        self._redacted_keys: set[str] = set()
        self._nonfinite_points = 0
        self._ended = False

    # --- metrics -----------------------------------------------------------------------------

    def log_metric(self, key: str, value: object, step: int | None = None) -> None:
        """Queue one metric point; raises TypeError/ValueError here for a bad value or key."""
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """Queue metric points at ``step`` (0 when omitted, as in MLflow).

        Raises:
            TypeError: a value is not a real number (bools are stored as 0/1).
            ValueError: a key breaks MLflow's naming rules.
        """
        self._check_open()
        timestamp = _now_ms()
        step = 0 if step is None else int(step)
        valid_keys = self._valid_keys
        points = []
        for key, value in metrics.items():  # runs for every point: the common case inline
            if key not in valid_keys:
                valid_keys.add(check_key(key))
            if type(value) is not float:
                value = metric_value(key, value)
            if value - value != 0.0:  # NaN or ±inf
                self._nonfinite_points += 1
            points.append(MetricRecord(key, value, timestamp, step))
        self._journal.add_all(points)  # all checked first: a bad value queues nothing of the call

    # --- params and tags ---------------------------------------------------------------------

    def log_param(self, key: str, value: object) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Queue params; nested dicts are flattened to dotted keys, secrets masked.

        Raises:
            ValueError: a key is invalid, or a param already logged gets a different value.
        """
        self._check_open()
        values = {check_key(key): param_value(key, value) for key, value in flatten(params).items()}
        values, redacted = redact(values)
        for key, value in values.items():
            old = self._params.get(key)
            if old is not None and old != value:
                raise ParamChangedError(key, old, value)
        for key, value in values.items():
            if key not in self._params:
                self._params[key] = value
                self._journal.add(ParamRecord(key, value))
        self._note_redacted(redacted)

    def set_tag(self, key: str, value: object) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Queue tags (they may change later, unlike params); secrets are masked."""
        self._check_open()
        values = {check_key(key): tag_value(key, value) for key, value in flatten(tags).items()}
        values, redacted = redact(values)
        for key, value in values.items():
            self._journal.add(TagRecord(key, value))
        self._note_redacted(redacted)

    def _note_redacted(self, keys: list[str]) -> None:
        if keys and not set(keys) <= self._redacted_keys:
            self._redacted_keys.update(keys)
            self._journal.add(TagRecord(REDACTED_KEYS_TAG, ",".join(sorted(self._redacted_keys))))

    # --- artifacts ---------------------------------------------------------------------------

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Upload a file or folder to the run's artifacts now (artifacts bypass the journal)."""
        self._check_open()
        path = Path(local_path)
        if not path.exists():
            raise InvalidArgumentError(f"artifact {str(path)!r} does not exist")
        client = self._tracker.client
        if path.is_dir():
            client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            client.log_artifact(self.run_id, str(path), artifact_path)

    # --- ending ------------------------------------------------------------------------------

    def __enter__(self) -> TrackedRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if exc_type is None:
            status = FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = KILLED
        else:
            status = FAILED
        self.end(status)
        return False  # an exception always propagates

    def end(self, status: str = FINISHED) -> None:
        """Wait (at most the drain timeout) for the store to have every record, then end the run.

        The status and end time are set once: here, when the store answers, or else by the
        writer from the journal's end record once the records are in. Safe to call twice.
        """
        if self._ended:
            return
        self._ended = True
        if self._nonfinite_points:
            self._journal.add(TagRecord(NONFINITE_TAG, str(self._nonfinite_points)))
        drained = applied = False
        try:
            self._journal.flush()
            drained = self._tracker._drain(self._journal.path, self.run_id)
            if not drained:  # the journal's copy is the only one for a while: make it durable
                self._journal.sync()
            applied = self._tracker._end_mlflow_run(self.run_id, status, drained)
        finally:
            self._journal.add(EndRecord(status, _now_ms(), applied=applied))
            # Once the store has every record and the status, the end record only says so: a
            # lost one is harmless (a RUNNING status is what a writer would correct).
            self._journal.close(sync=not (drained and applied))
            heap.release()

    def _check_open(self) -> None:
        if self._ended:
            raise TrackingError(f"run {self.run_id} has ended; start a new run to log more")


class ExperimentTracker:
    """Gets or creates one MLflow experiment and runs in it; one per experiment name.

    Args:
        experiment_name: the MLflow experiment; created when missing.
        tracking_uri: overrides ``MLFLOW_TRACKING_URI``, ``.env`` and the embedded default.
        journal_dir: where run journals live (default ``./mlruns/journal``).
        drain_timeout: seconds a run's exit waits for its records to reach the store.
        store: a store whose settings are already resolved (their journal folder and timeouts
            are used; ``tracking_uri``/``journal_dir``/``drain_timeout`` are then ignored), so
            the URI keeps the source it was resolved from.

    Raises:
        TrackingURIError: the URI is malformed or its store does not answer.
        LegacyFileStoreError: the target is an old MLflow file store.
    """

    def __init__(
        self,
        experiment_name: str,
        tracking_uri: str | None = None,
        *,
        journal_dir: str | os.PathLike[str] | None = None,
        drain_timeout: float | None = None,
        store: Store | None = None,
    ) -> None:
        if not experiment_name or not isinstance(experiment_name, str):
            raise InvalidArgumentError(
                f"experiment name must be a non-empty string, got {experiment_name!r}"
            )
        self.experiment_name = experiment_name
        if store is None:
            store = Store.from_settings(config.resolve(
                tracking_uri, journal_dir=journal_dir, drain_timeout=drain_timeout
            ))
        store.validate()
        self.store = store
        self.settings = store.settings
        self.tracking_uri = self.settings.tracking_uri.value
        self.journal_dir = Path(self.settings.journal_dir.value)
        self.drain_timeout = float(self.settings.drain_timeout.value)
        self._flush_interval = float(self.settings.flush_interval.value)
        self.intended_uri: str | None = None
        """The configured store when it did not answer and runs are kept locally."""
        try:
            self._connect()
        except StoreUnreachableError as error:
            if not offline.falls_back(self.settings):
                raise
            self._fall_back(error)
        self.experiment_id = self._get_or_create_experiment()

    # --- set-up ------------------------------------------------------------------------------

    def _connect(self) -> None:
        """Open the store, failing in one line that names the URI and its source.

        The store layer probes a server or remote database first, so a dead one fails in
        seconds (StoreUnreachableError), and hands credentials to MLflow.
        """
        if self.store.settings is not self.settings:  # the settings changed (fallback)
            self.store = Store.from_settings(self.settings)
        self.client = self.store.client()
        config.point_mlflow_at(self.tracking_uri)  # so the user's mlflow.* calls land here too

    def _fall_back(self, error: AgentNNError) -> None:
        """Track in the embedded store while the configured one does not answer."""
        intended = self.settings.tracking_uri
        self.intended_uri = intended.value
        self.settings = config.embedded_settings(self.settings)
        self.tracking_uri = self.settings.tracking_uri.value
        offline.warn_fallback(intended, self.tracking_uri, getattr(error, "reason", str(error)))
        self._connect()

    def _fall_back_if_down(self) -> None:
        """A tracker kept for long (the runtime ModelManager's) checks its server per run."""
        if self.intended_uri is not None or not self.store.is_http:
            return
        health = self.store.probe(offline.RUN_START_PROBE_TIMEOUT, full=False)
        if health.reachable or health.problem is None:
            return
        if not offline.falls_back(self.settings):
            raise health.problem
        self._fall_back(health.problem)
        self.experiment_id = self._get_or_create_experiment()

    def _get_or_create_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        try:
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                artifacts = self.settings.artifact_location
                try:
                    return self.client.create_experiment(
                        self.experiment_name,
                        artifact_location=Path(artifacts.value).as_uri() if artifacts else None,
                    )
                except MlflowException as error:
                    if not is_already_exists(error):
                        raise
                    experiment = self.client.get_experiment_by_name(self.experiment_name)
        except Exception as error:  # MLflow, HTTP, SQL or driver errors: one agentnn line
            raise self.store.translate(error) from None
        assert experiment is not None  # found, created above, or created meanwhile by another
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment {self.experiment_name!r} is deleted; restore it with "
                f"`mlflow experiments restore --experiment-id {experiment.experiment_id}` "
                "or use another name"
            )
        return experiment.experiment_id

    # --- runs --------------------------------------------------------------------------------

    def start_run(
        self,
        run_name: str | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        *,
        run_id: str | None = None,
        nested: bool = False,
        description: str | None = None,
    ) -> TrackedRun:
        """Start a run (or resume ``run_id``) and make it MLflow's active run.

        Use it as a context manager; the run name is generated when not given
        (``<experiment>-<yyyymmdd-hhmmss>-<hex>``). ``nested=True`` makes it a child of the
        active run. Tags and params are checked before anything is created.
        """
        import mlflow

        user_tags = {check_key(k): tag_value(k, v) for k, v in flatten(dict(tags or {})).items()}
        user_tags, redacted = redact(user_tags)
        if redacted:
            user_tags[REDACTED_KEYS_TAG] = ",".join(sorted(redacted))
        if run_id is None and not nested and mlflow.active_run() is None:
            self._fall_back_if_down()
        if self.intended_uri:
            user_tags.update(offline.pending_tags(self.intended_uri))
        git = None
        if run_id is None:
            run_name = run_name or generate_run_name(self.experiment_name)
            git = GitQuery()  # git answers while the store creates the run
            with self.store.errors():  # a READ-only user: one line, permission denied
                active = mlflow.start_run(
                    experiment_id=self.experiment_id,
                    run_name=run_name,
                    nested=nested,
                    tags={**automatic_tags(), **user_tags},
                    description=description,
                )
            logged_params: dict[str, str] = {}
        else:
            with self.store.errors():
                active = mlflow.start_run(run_id=run_id, nested=nested)
            run_name = active.info.run_name
            logged_params = dict(self.client.get_run(run_id).data.params)
            for key, value in user_tags.items():
                self.client.set_tag(run_id, key, value)
        run_id = active.info.run_id
        if self.intended_uri:
            offline.record_pending(self.journal_dir, run_id, self.tracking_uri, self.intended_uri)
        journal = BufferedJournal(
            new_journal_path(self.journal_dir, run_id),
            new_header(run_id, self.tracking_uri),
            self._flush_interval,
        )
        if self._writer.watch(journal.path):  # the writer imports MLflow while training starts
            journal.handoff = HANDOFF  # this process's writer thread serves it
        if git is not None:
            journal.add_all([TagRecord(key, value) for key, value in git.tags().items()
                             if key not in user_tags])
        run = TrackedRun(self, run_id, run_name, journal, logged_params)
        heap.hold()  # released in run.end(): no full collection walks MLflow's heap meanwhile
        if params:
            try:
                run.log_params(params)
            except BaseException:
                run.end(FAILED)
                raise
        return run

    def log_to_ended_run(
        self, run_id: str, metrics: Mapping[str, object], step: int = 0, *, wait: bool = False
    ) -> Path:
        """Log metric points to a run that has already ended, leaving its status and end time.

        For facts known only later, such as how often a loaded model was then used. The points
        go through a journal of their own, as a run's do: no store round trip here unless
        ``wait``, which waits (at most the drain timeout) until the store has them. Otherwise
        this process's writer sends them, or, at exit, the writer process it hands over to.
        Returns the journal's path.

        Raises:
            TypeError, ValueError: a value is not a number or a key breaks MLflow's rules.
        """
        timestamp = _now_ms()
        points = [MetricRecord(check_key(key), metric_value(key, value), timestamp, int(step))
                  for key, value in metrics.items()]
        journal = BufferedJournal(
            new_journal_path(self.journal_dir, run_id),
            new_header(run_id, self.tracking_uri),
            self._flush_interval,
        )
        journal.add_all(points)
        journal.add(EndRecord(FINISHED, timestamp, applied=True))  # the status stays as set
        journal.close()
        if wait:
            self._writer.wait_drained(journal.path, self.drain_timeout)
        else:
            self._writer.wake()
        return journal.path

    def best_run(self, metric: str, mode: str = "min") -> RunSummary | None:
        """The finished run with the lowest (``min``) or highest (``max``) value of ``metric``.

        Runs without the metric, and NaN values, are ignored; None when no run qualifies.
        """
        filter_string, order_by = best_run_query(metric, mode)
        page_token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=filter_string,
                order_by=[order_by],
                max_results=20,
                page_token=page_token,
            )
            for run in page:
                value = run.data.metrics.get(metric)
                if value is not None and not math.isnan(value):
                    return RunSummary.from_mlflow(run)
            page_token = page.token
            if not page_token:
                return None

    # --- draining ----------------------------------------------------------------------------

    @property
    def _writer(self) -> WriterProcess:
        return WriterProcess.for_folder(self.journal_dir)

    def _drain(self, journal: Path, run_id: str) -> bool:
        """Wait until the store has every record of the journal; True when it does."""
        started = time.monotonic()
        shown, shown_percent = False, -1

        def progress(fraction: float) -> None:
            nonlocal shown, shown_percent
            percent = int(100 * fraction) // PROGRESS_STEP * PROGRESS_STEP
            if time.monotonic() - started > PROGRESS_AFTER and percent != shown_percent:
                logger.info("sending run %s to the store… %d%%", run_id[:8], percent)
                shown, shown_percent = True, percent

        drained = self._writer.wait_drained(journal, self.drain_timeout, progress)
        if shown and drained:
            logger.info("sending run %s to the store… done", run_id[:8])
        if not drained:
            warnings.warn(
                f"run {run_id}: the store has not confirmed every record (waited up to "
                f"{self.drain_timeout:.0f} s); they stay in {journal} and the writer sends them "
                "when it answers (`agentnn model sync` sends them now)",
                TrackingWarning,
                stacklevel=DRAIN_STACKLEVEL,
            )
            return False
        rejected = rejected_path(journal)
        if rejected.exists():
            warnings.warn(f"the store refused some records of run {run_id}; they are kept in "
                          f"{rejected}", TrackingWarning, stacklevel=DRAIN_STACKLEVEL)
        return True

    def _end_mlflow_run(self, run_id: str, status: str, drained: bool) -> bool:
        """Release MLflow's active run and set the status; True when the store has it.

        ``mlflow.end_run`` is MLflow's one public way to release its active run, and it sets the
        status too. When the journal is not drained and the run is not MLflow's active run,
        nothing is asked of the store: the writer sets the status from the end record.
        """
        import mlflow

        active = mlflow.active_run()
        try:
            if active is not None and active.info.run_id == run_id:
                mlflow.end_run(status)  # bounded: the store layer caps MLflow's HTTP retries
            elif drained:
                self.client.set_terminated(run_id, status)
            else:
                return False
        except Exception as error:  # the store is down or refuses us; the writer retries later
            warnings.warn(f"could not set the status of run {run_id} yet "
                          f"({self.store.translate(error)}); "
                          "the writer sets it when the journal reaches the store",
                          TrackingWarning, stacklevel=DRAIN_STACKLEVEL)
            return False
        return True

