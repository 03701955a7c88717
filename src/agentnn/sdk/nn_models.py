"""The SDK ``ModelManager``: find, compare, register, promote and load models.

Example::

    from agentnn.sdk.nn_models import ModelManager

    mm = ModelManager()                                     # the resolved store (config.py)
    best = mm.best_run("advanced_training", "val_loss", mode="min")
    version = mm.register_model(best.run_id, "agent-router", alias="champion")
    model = mm.load_model("agent-router@champion")

Every method returns plain data (dataclasses with ``to_dict()``), which the ``agentnn model``
command renders. It works on any MLflow store and on runs agentnn did not write: where a run
lacks what agentnn adds, it shows what is there. On a SQLite store the read-only questions are
answered straight from the database (see ``_sqlite_reader``), which skips the seconds
``import mlflow`` costs; everything else goes through ``MlflowClient``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentnn import config
from agentnn.errors import (
    AmbiguousRunIdError,
    InvalidArgumentError,
    LegacyFileStoreError,
    NotFoundError,
)
from agentnn.mlflow_integration.run.datasets import DATASET_TAG
from agentnn.mlflow_integration.run.queries import best_run_query
from agentnn.mlflow_integration.store.client import Store
from agentnn.mlflow_integration.store.process_uri import point_mlflow
from agentnn.sdk._downsample import check_max_points
from agentnn.sdk._key_metrics import goal_of, key_metrics, objective_of
from agentnn.sdk._mlflow_reader import DEFAULT_PAGE_SIZE, MlflowReader, mlflow_errors
from agentnn.sdk._records import (
    ExperimentInfo,
    MetricPoint,
    MetricWatch,
    MigrationReport,
    ModelVersionInfo,
    RunComparison,
    RunDetail,
    RunInfo,
    RunWatch,
    WatchSnapshot,
    values_differ,
)
from agentnn.sdk._server_reader import ServerReader
from agentnn.sdk._sqlite_reader import SqliteReader, Unsupported, sqlite_path

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from mlflow import MlflowClient

    from agentnn.mlflow_integration.importing.writer import ImportResult
    from agentnn.mlflow_integration.models.loading import LoadedModel
    from agentnn.mlflow_integration.offline.model_push import ModelPushResult
    from agentnn.mlflow_integration.offline.push import PushResult

__all__ = [
    "ExperimentInfo",
    "MetricPoint",
    "MetricWatch",
    "MigrationReport",
    "ModelManager",
    "ModelVersionInfo",
    "RunComparison",
    "RunDetail",
    "RunInfo",
    "RunWatch",
    "WatchSnapshot",
    "goal_of",
    "key_metrics",
    "objective_of",
]

logger = logging.getLogger(__name__)

BEST_RUN_PAGE = 20  # runs fetched to find the best one not NaN
RUN_ID_LENGTH = 32  # MLflow's run ids: 32 hex characters; shorter ones are prefixes
AMBIGUOUS_SHOWN = 10  # candidates listed when a short run id matches several runs
PLOT_MAX_POINTS = 2000  # points per curve in a plot: 4 per bucket, far more than the pixels
RUNNING_FILTER = "attributes.status = 'RUNNING'"


class ModelManager:
    """The SDK's ``ModelManager``: experiments, runs, the model registry and loading, on one
    resolved tracking store, answered as plain data for the CLI and for users.

    Not the runtime :class:`agentnn.managers.model_manager.ModelManager`, which serves loaded
    models and records each load as a run; both load through the same
    :class:`~agentnn.mlflow_integration.models.loading.ModelLoader`.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        direct_reads: bool = True,
    ) -> None:
        """
        Args:
            tracking_uri: the store; None resolves it like everything else (config.py).
            page_size: runs per MLflow result page when paging through searches.
            direct_reads: answer read-only questions on a SQLite store from the file itself;
                False always asks MLflow (same answers, slower start).
        """
        self.store = Store.resolve(tracking_uri)  # settings resolved once, with their sources
        self.settings = self.store.settings
        self._legacy_store: LegacyFileStoreError | None = None
        try:
            self.store.validate()
        except LegacyFileStoreError as error:  # only migrate() may work on such a store
            self._legacy_store = error
        self.tracking_uri = self.settings.tracking_uri.value
        if page_size < 1:
            raise InvalidArgumentError(f"page_size must be at least 1, got {page_size}")
        self._client_instance: MlflowClient | None = None
        self._mlflow = MlflowReader(
            lambda: self._client, self.store, page_size
        )
        path = sqlite_path(self.tracking_uri) if direct_reads else None
        self._direct = SqliteReader(path) if path is not None else None
        if self._legacy_store is None:  # the user's own mlflow.* calls see the same store
            point_mlflow(self.tracking_uri)
        # A team server running the agentnn app answers the same questions in one request each.
        self._server = ServerReader(self.store) if direct_reads and self.store.is_http else None

    # --- plumbing ------------------------------------------------------------------------

    @property
    def _client(self) -> MlflowClient:
        """An ``MlflowClient`` on the store, made on first use (importing MLflow is slow).

        The store layer probes a server first, so a dead one fails in seconds; a SQLite path
        with no store is refused rather than created empty.
        """
        if self._legacy_store is not None:
            raise self._legacy_store
        if self._client_instance is None:
            self.store.require_existing()
            self._client_instance = self.store.client()
        return self._client_instance

    def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Ask the SQLite file directly when possible, else MLflow; both answer the same.

        Any: the answer is that of the readers' method named ``method``; callers annotate it.
        """
        if self._legacy_store is not None:
            raise self._legacy_store
        self.store.require_existing()  # a read never creates a store where a path was mistyped
        if self._direct is not None:
            try:
                return getattr(self._direct, method)(*args, **kwargs)
            except Unsupported as reason:
                logger.debug("%s: asking MLflow, the direct SQLite reader declined (%s)",
                             method, reason)
        if self._server is not None and hasattr(self._server, method):
            try:
                return getattr(self._server, method)(*args, **kwargs)
            except Unsupported as reason:
                logger.debug("%s: asking MLflow's REST API, the agentnn app declined (%s)",
                             method, reason)
        return getattr(self._mlflow, method)(*args, **kwargs)

    def _errors(self, kind: str = "", name: str = "") -> AbstractContextManager[None]:
        return mlflow_errors(self.store, kind=kind, name=name)

    # --- experiments and runs ------------------------------------------------------------

    def list_experiments(self, include_deleted: bool = False) -> list[ExperimentInfo]:
        """Name, id, run count and last run time of each experiment; deleted ones on request."""
        experiments = self._read("list_experiments", include_deleted)
        return sorted(experiments, key=lambda e: (not e.experiment_id.isdigit(),
                                                  int(e.experiment_id) if e.experiment_id.isdigit()
                                                  else 0, e.experiment_id))

    def list_runs(
        self,
        experiment: str | None = None,
        filter: str | None = None,  # noqa: A002 - MLflow's word for it
        order_by: str | list[str] | None = None,
        limit: int | None = 100,
        include_deleted: bool = False,
        dataset: str | None = None,
    ) -> list[RunInfo]:
        """Runs of one experiment (name or id), or of all active ones when None.

        Args:
            filter: MLflow search syntax, e.g. ``"params.lr = '0.001' and metrics.acc > 0.9"``.
            dataset: only runs trained on this data set (``digits``, ``synthetic``, a log's
                file name), as their ``agentnn.dataset`` tag says.
            order_by: e.g. ``"metrics.val_loss ASC"``; newest first by default.
            limit: at most this many runs; None lists every run, page by page.

        Raises:
            NotFoundError: the experiment does not exist.
            InvalidQueryError: MLflow rejects the filter or order-by.
        """
        if limit is not None and limit < 1:
            raise InvalidArgumentError(f"limit must be at least 1 (or None for all), got {limit}")
        ids = (
            [self._read("find_experiment", experiment)[0]] if experiment is not None
            else [info.experiment_id for info in self._read("list_experiments", False)]
        )
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        where = filter
        if dataset is not None:
            by_dataset = f"tags.`{DATASET_TAG}` = '{_quote(dataset)}'"
            where = f"{filter} and {by_dataset}" if filter and filter.strip() else by_dataset
        runs: list[RunInfo] = self._read("search_runs", ids, where, orders, limit,
                                         include_deleted)
        return runs

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of the run ``run_id`` names: a full id as it is, or a unique prefix.

        Tables show the first 8 characters of a run id; like git's short hashes, any prefix
        that matches one run is as good as the full id, in every method that takes one.

        Raises:
            NotFoundError: no run id starts with ``run_id``.
            AmbiguousRunIdError: several do; the error lists them.
        """
        ref = run_id.strip()
        if len(ref) >= RUN_ID_LENGTH or not ref:
            return ref
        matches: list[str] = self._read("match_run_ids", ref, AMBIGUOUS_SHOWN + 1)
        if not matches:
            raise NotFoundError("run", ref)
        if len(matches) > 1:
            raise AmbiguousRunIdError(ref, matches[:AMBIGUOUS_SHOWN])
        return matches[0]

    def get_run(self, run_id: str) -> RunDetail:
        """Status, times, duration, params, latest metrics, tags, artifacts, parent and children.

        ``run_id`` may be a unique prefix (see :meth:`resolve_run_id`).
        """
        detail: RunDetail = self._read("run_detail", self.resolve_run_id(run_id))
        return detail

    def metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[MetricPoint]:
        """The logged points of one metric, by step: ``[(step, value, timestamp), …]``.

        Args:
            max_points: None returns every point. Otherwise at most this many (at least 4),
                chosen so the curve keeps its shape: the step range is cut into buckets, each
                keeping its first, last, smallest and largest point, so the global minimum and
                maximum and the first and last point are always there. On a SQLite store the
                query itself does this (a million points reduce in well under a second); on
                other stores the history is fetched, then reduced.

        Raises:
            NotFoundError: the run does not exist, or never logged ``key``.
            InvalidArgumentError: ``max_points`` is below 4.
        """
        check_max_points(max_points)
        run_id = self.resolve_run_id(run_id)
        points: list[MetricPoint] = self._read("metric_history", run_id, key, max_points)
        if not points:
            known = sorted(self._read("get_run", run_id).metrics)
            raise NotFoundError("metric", key, f"run {run_id} logged: {', '.join(known) or 'none'}")
        return points

    def best_run(
        self, experiment: str, metric: str, mode: str = "min", *, dataset: str | None = None
    ) -> RunInfo | None:
        """The finished run with the lowest (``min``) or highest (``max``) final ``metric``.

        One sorted query (see :func:`best_run_query`); NaN values are skipped; None when no
        finished run logged the metric as a number. ``dataset`` keeps to runs trained on that
        data set (see :meth:`list_runs`).
        """
        filter_string, order_by = best_run_query(metric, mode)
        if self._server is not None and dataset is None:  # one request, resolved on the server
            try:
                best: RunInfo | None = self._server.best_run(experiment, metric, mode)
                return best
            except Unsupported as reason:
                logger.debug("best_run: asking MLflow's REST API, the agentnn app declined (%s)",
                             reason)
        for limit in (BEST_RUN_PAGE, None):  # a second, full look only if the page was all NaN
            runs = self.list_runs(experiment, filter=filter_string, order_by=order_by,
                                  limit=limit, dataset=dataset)
            for run in runs:
                value = run.metrics.get(metric)
                if value is not None and not math.isnan(value):
                    return run
            if limit is None or len(runs) < limit:
                return None
        return None

    def plot_metric(
        self,
        run_ids: list[str],
        metric: str,
        path: str | Path,
        *,
        max_points: int | None = PLOT_MAX_POINTS,
        log_scale: bool = False,
        smooth: float = 0.0,
    ) -> Path:
        """Draw ``metric`` of each run against step into a PNG at ``path``; returns the path.

        Each curve is read downsampled (see :meth:`metric_history`), so a run of a million
        points draws in about a second with its spikes intact. ``smooth`` in [0, 1) adds an
        exponential moving average over the raw curve (TensorBoard's slider); ``log_scale``
        draws the values on a log axis.

        Raises:
            NotFoundError: a run does not exist or never logged ``metric``.
        """
        from agentnn.sdk._plot import check_smoothing, plot_curves, preload_matplotlib

        check_smoothing(smooth)
        check_max_points(max_points)
        importing = preload_matplotlib()
        curves = {}
        try:
            for run_id in map(self.resolve_run_id, run_ids):
                run = self._read("get_run", run_id)
                label = f"{run.run_name or ''} ({run_id[:8]})".strip()
                curves[label] = self.metric_history(run_id, metric, max_points)
        finally:
            importing.join()  # never leave an import running into interpreter shutdown
        return plot_curves(curves, metric, Path(path), log_scale=log_scale, smooth=smooth)

    def watch(self, target: str) -> WatchSnapshot:
        """One snapshot of a run, or of an experiment's running runs, for a live view.

        ``target`` is an experiment (name or id) or a run id. Per metric: the latest and best
        value and a short curve, read downsampled from the store plus the points the run's
        journal on this machine has not sent yet. An experiment with no running run shows its
        newest run.

        Raises:
            NotFoundError: no experiment and no run is called ``target``.
        """
        from agentnn.sdk._watch import watch_run

        experiment: str | None = None
        try:
            experiment_id, experiment = self._read("find_experiment", target)
        except NotFoundError:
            try:
                runs = [self._read("get_run", self.resolve_run_id(target))]
            except NotFoundError:
                raise NotFoundError(
                    "run or experiment", target, "list them with: agentnn model experiments"
                ) from None
        else:
            runs = self.list_runs(experiment_id, filter=RUNNING_FILTER, limit=None)
            runs = runs or self.list_runs(experiment_id, limit=1)
        journal_dir = Path(self.settings.journal_dir.value)
        watched = [watch_run(run, self.metric_history, journal_dir) for run in runs]
        return WatchSnapshot(target=target, experiment=experiment, runs=watched,
                             taken_ms=int(time.time() * 1000))

    def compare_runs(self, run_ids: list[str]) -> RunComparison:
        """Params and final metrics of the runs side by side, and the keys whose values differ."""
        if len(run_ids) < 2:
            raise InvalidArgumentError("compare needs at least two run ids")
        runs = [self._read("get_run", self.resolve_run_id(run_id)) for run_id in run_ids]
        param_keys = sorted({key for run in runs for key in run.params})
        metric_keys = sorted({key for run in runs for key in run.metrics})
        params = {key: [run.params.get(key) for run in runs] for key in param_keys}
        metrics = {key: [run.metrics.get(key) for run in runs] for key in metric_keys}
        return RunComparison(
            runs=runs,
            params=params,
            metrics=metrics,
            differing_params=[key for key in param_keys if values_differ(params[key])],
            differing_metrics=[key for key in metric_keys if values_differ(metrics[key])],
        )

    # --- registry ------------------------------------------------------------------------

    def register_model(
        self, run_id: str, name: str, alias: str | None = None
    ) -> ModelVersionInfo:
        """Register the model the run logged as a new version of ``name`` (created if new).

        Finds the run's MLflow 3 LoggedModel, or else an artifact folder with an MLmodel file.

        Raises:
            NotFoundError: the run does not exist.
            RunHasNoModelError: the run logged no model.
        """
        from agentnn.sdk import _native_registry, _registry

        run_id = self.resolve_run_id(run_id)
        if self._direct is not None and self._legacy_store is None:
            self.store.require_existing()
            try:  # on a SQLite store, as fast as the reads: no MLflow import
                return _native_registry.register(self._direct, run_id, name, alias)
            except Unsupported as reason:
                logger.debug("register_model: through MLflow, the native path declined (%s)",
                             reason)
        with self._errors("run", run_id):
            return _registry.register(self._client, run_id, name, alias)

    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersionInfo:
        """Point ``name@alias`` at ``version`` (a number, or its text as MLflow gives it); the
        alias moves if it pointed elsewhere. On a SQLite store written without MLflow, as
        :meth:`register_model` is."""
        from agentnn.sdk import _native_registry, _registry

        if self._direct is not None and self._legacy_store is None:
            self.store.require_existing()
            try:
                return _native_registry.set_alias(self._direct, name, alias, int(version))
            except Unsupported as reason:
                logger.debug("set_alias: through MLflow, the native path declined (%s)", reason)
        with self._errors("registered model", name):
            return _registry.set_alias(self._client, name, alias, int(version))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``name@alias``; the version itself stays."""
        from agentnn.sdk import _native_registry, _registry

        if self._direct is not None and self._legacy_store is None:
            self.store.require_existing()
            try:
                _native_registry.delete_alias(self._direct, name, alias)
                return
            except Unsupported as reason:
                logger.debug("delete_alias: through MLflow, the native path declined (%s)",
                             reason)
        with self._errors("alias", f"{name}@{alias}"):
            _registry.delete_alias(self._client, name, alias)

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """Versions of ``name``, newest first: aliases, run, created, source, run metrics.

        On a SQLite store read from the file itself, on a server through the agentnn app when it
        has one, like the other reads (no MLflow import).
        """
        found: list[ModelVersionInfo] = self._read("list_versions", name)
        return found

    def load_model(self, uri: str, *, trust: bool = False) -> LoadedModel:
        """Load a model: ``name@alias``, ``name/3``, ``runs:/<id>/model``, a model id or a path.

        Delegates to the one loader, ``agentnn.mlflow_integration.models.loading``, which also
        resolves a legacy ``models:/name/Production`` (with a DeprecationWarning). A pickled
        ``mlflow.pytorch`` model needs ``trust=True``: unpickling runs code from the file.
        """
        from agentnn.mlflow_integration.models.loading import load_model

        if self._legacy_store is not None:
            raise self._legacy_store
        return load_model(uri, tracking_uri=self.tracking_uri, trust=trust)

    def describe_model(
        self, uri: str, *, trust: bool = False, predict: str | Path | None = None
    ) -> dict[str, Any]:
        """Load a model and describe it (signature, provenance, size) as plain data.

        With ``predict`` (a JSON file of rows, or ``{"inputs": rows}``), run the model on those
        rows instead and return ``{"inputs_shape", "outputs"}``.
        """
        from agentnn.sdk._predict import describe_model, predict_json

        loaded = self.load_model(uri, trust=trust)
        if predict is None:
            return describe_model(loaded)
        return predict_json(loaded, Path(predict))

    # --- store ---------------------------------------------------------------------------

    def migrate(self, source: str | Path | None = None) -> MigrationReport:
        """Move a legacy MLflow file store into this SQLite store, losing nothing.

        ``source`` defaults to ``./mlruns``. Artifacts stay where they are; the runs point
        at them. See :mod:`agentnn.sdk._migrate`.
        """
        from agentnn.sdk._migrate import migrate_file_store

        if self._direct is not None:
            self._direct.close()
        path = Path(source) if source is not None else self.settings.cwd / config.DEFAULT_STORE_DIR
        return migrate_file_store(path, self.tracking_uri)

    def ui_command(self, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
        """The ``mlflow server`` command line that serves the UI on this store."""
        from agentnn.sdk._ui import server_command

        return server_command(self.settings, host=host, port=port)

    def serve_ui(self, host: str = "127.0.0.1", port: int = 5000, *,
                 log: Path | None = None) -> int:
        """Serve MLflow's UI on this store until the server exits or this process is stopped.

        The server runs as a child in its own process group; SIGTERM, SIGINT or SIGHUP to
        this process stop the whole group first. Its output (start-up notes, a line per
        request) goes to the file ``log`` when given. Returns the exit code to leave with.
        """
        from agentnn.sdk._ui import serve

        return serve(self.ui_command(host=host, port=port), log=log)

    # --- pushing runs to another store ---------------------------------------------------

    def push_runs(
        self, run_ids: list[str], to: str, *, progress: Callable[[int, int], None] | None = None,
        create: bool = False,
    ) -> list[PushResult]:
        """Copy runs of this store to the store ``to``, whole: params, tags, every metric point,
        times, status, artifacts, logged models and their registrations.

        A copy is found again by its ``agentnn.source_run_id`` tag and only what it lacks is
        sent, so an interrupted push resumes and a repeated one changes nothing.
        ``progress(done, total)`` is called as runs complete. A ``sqlite:///`` target must hold
        a store already unless ``create`` is true (a typo would otherwise get a new one). A run
        kept here during an outage stays pending unless ``to`` is the store it was meant for.

        Raises:
            NotFoundError: a run does not exist here.
            StoreNotFoundError: ``to`` is a ``sqlite:///`` path with no store and not ``create``.
            StoreUnreachableError: ``to`` does not answer.
        """
        from agentnn.mlflow_integration.offline.fallback import push_runs

        if not run_ids:
            raise InvalidArgumentError("push needs at least one run id")
        full_ids = [self.resolve_run_id(run_id) for run_id in run_ids]
        return push_runs(self._client, full_ids, to, self.settings, progress=progress,
                         create=create)

    def push_model(
        self, name: str, to: str, *, progress: Callable[[int, int], None] | None = None,
        create: bool = False,
    ) -> ModelPushResult:
        """Copy registered model ``name`` of this store to the store ``to``, whole: every
        version with its run (as :meth:`push_runs` copies it), tags and description, the
        model's aliases, tags and description.

        On a target with no versions of ``name`` the version numbers are kept (versions are
        created in the source's order); where they cannot be (the target has versions of that
        name already, or a deleted version left a gap here) ``numbers`` says so and each
        version's ``target_version`` gives its new number. Where the target differs, this
        store's tags, descriptions and aliases win; nothing is removed there. A repeated push
        changes nothing. ``progress(done, total)`` is called as versions are done.

        Raises:
            NotFoundError: no registered model ``name`` here.
            StoreNotFoundError: ``to`` is a ``sqlite:///`` path with no store and not ``create``.
            StoreUnreachableError: ``to`` does not answer.
        """
        from agentnn.mlflow_integration.offline.fallback import push_model

        if not name:
            raise InvalidArgumentError("push needs the name of a registered model")
        with self._errors("registered model", name):
            return push_model(self._client, name, to, self.settings, progress=progress,
                              create=create)

    def pending_runs(self) -> list[RunInfo]:
        """Runs kept in the embedded store (``./mlruns``) while their server did not answer,
        and not pushed there yet."""
        from agentnn.mlflow_integration.offline.push import PUSH_PENDING, PUSH_TAG

        local = config.embedded_uri(self.settings)
        path = sqlite_path(local)
        if path is None or not Path(path).is_file():
            return []
        manager = self if local == self.tracking_uri else ModelManager(local)
        if manager is not self:
            point_mlflow(self.tracking_uri)  # MLflow stays on this manager's store
        return manager.list_runs(filter=f"tags.`{PUSH_TAG}` = '{PUSH_PENDING}'", limit=None)

    def push_pending(
        self, *, progress: Callable[[int, int], None] | None = None
    ) -> list[PushResult]:
        """Push every pending run (see :meth:`pending_runs`) to the store it was meant for."""
        from agentnn.mlflow_integration.offline.fallback import push_pending

        return push_pending(self.settings, progress=progress)

    # --- runs from other trackers --------------------------------------------------------

    def import_runs(
        self, sources: list[str | Path], experiment: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[ImportResult]:
        """Bring runs in from TensorBoard log folders, W&B offline runs and trackio projects.

        Each source's params, tags, every metric point with its step and time, status, start
        and end time go into this store (a SQLite store is created when missing, as by a run).
        A run is found again by its ``agentnn.imported_from`` tag, so importing a source again
        changes nothing and an interrupted import resumes. ``experiment`` puts every run there
        instead of the source's own project or folder name. ``progress(done, total)`` counts
        points. A source that cannot be read gives a result with ``error`` set (one line);
        what a run held that could not be stored as it was is listed in its ``skipped``.

        Raises:
            StoreUnreachableError: the store does not answer.
        """
        from agentnn.mlflow_integration.importing.run import import_sources

        if self._legacy_store is not None:
            raise self._legacy_store
        if not sources:
            raise InvalidArgumentError("import needs at least one source path")
        return import_sources(sources, self.store, experiment=experiment, progress=progress)

    def close(self) -> None:
        """Release the direct SQLite connection, if one is open."""
        if self._direct is not None:
            self._direct.close()


def _quote(value: str) -> str:
    """A value inside single quotes of an MLflow filter."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
