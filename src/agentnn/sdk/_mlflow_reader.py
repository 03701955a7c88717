"""Read-only answers through ``MlflowClient``: works on every store MLflow supports.

Turns MLflow's entities into the SDK's plain records and MLflow's exceptions into agentnn's
one-line errors. Searches page through MLflow's result pages, so nothing is cut at 1,000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, TypeVar

from agentnn.errors import InvalidQueryError, NotFoundError
from agentnn.mlflow_integration.store.classify import (
    Outcome,
    classify,
    is_not_found,
    lacks_logged_models,
)
from agentnn.sdk._downsample import downsample
from agentnn.sdk._records import (
    RUN_NAME_TAG,
    ExperimentInfo,
    MetricPoint,
    ModelVersionInfo,
    RunDetail,
    RunInfo,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel, Run

    from agentnn.mlflow_integration.store.client import Store

Item = TypeVar("Item")

DEFAULT_PAGE_SIZE = 1000  # MLflow's own default page; servers cap max_results at 50,000
ARTIFACT_LISTING_LIMIT = 10_000


@contextmanager
def mlflow_errors(
    store: Store, *, kind: str = "", name: str = "", order_by: str = ""
) -> Iterator[None]:
    """Turn MLflow's exceptions into agentnn's: bad queries here, the rest by the store layer.

    ``kind``/``name`` say what was asked for; for a search, ``kind="filter"`` with the filter
    as ``name`` and the order-by clauses in ``order_by``, so a rejection names the right one.
    Unknown things, malformed ids, dead stores, 401/403 and server errors are translated by
    :meth:`agentnn.mlflow_integration.store.client.Store.errors`.
    """
    from mlflow.exceptions import MlflowException

    with store.errors(kind=kind, name=name):
        try:
            yield
        except MlflowException as error:
            message = str(getattr(error, "message", error)).splitlines()[0][:300]
            if kind == "filter" and classify(error, follow_causes=False) is Outcome.REFUSED:
                if order_by and ("order" in message.lower() or not name):
                    raise InvalidQueryError("order-by", order_by, message) from None
                raise InvalidQueryError("filter", name, message) from None
            raise


def run_info(run: Run) -> RunInfo:
    """An MLflow ``Run`` as the SDK's :class:`RunInfo`."""
    info, data = run.info, run.data
    return RunInfo(
        run_id=info.run_id,
        run_name=info.run_name or data.tags.get(RUN_NAME_TAG),
        experiment_id=str(info.experiment_id),
        status=info.status,
        start_time_ms=info.start_time,
        end_time_ms=info.end_time,
        metrics={key: float(value) for key, value in data.metrics.items()},
        params=dict(data.params),
        tags=dict(data.tags),
        lifecycle_stage=info.lifecycle_stage,
    )


class MlflowReader:
    """The read-only questions of :class:`ModelManager`, asked of MLflow."""

    def __init__(
        self, client_factory: Callable[[], MlflowClient], store: Store, page_size: int
    ) -> None:
        self._client_factory = client_factory
        self.store = store
        self.page_size = page_size

    @property
    def client(self) -> MlflowClient:
        return self._client_factory()

    def _errors(
        self, kind: str = "", name: str = "", order_by: str = ""
    ) -> AbstractContextManager[None]:
        return mlflow_errors(self.store, kind=kind, name=name, order_by=order_by)

    def _pages(
        self, fetch: Callable[[str | None], Iterable[Item]], limit: int | None = None
    ) -> list[Item]:
        """Every item of a paged MLflow search, following ``page_token`` until done."""
        items: list[Item] = []
        token: str | None = None
        while True:
            page = fetch(token)
            items.extend(page)
            token = getattr(page, "token", None)
            if not token or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items

    # --- experiments ---------------------------------------------------------------------

    def list_experiments(self, include_deleted: bool) -> list[ExperimentInfo]:
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
        with self._errors():
            experiments = self._pages(lambda token: self.client.search_experiments(
                view_type=view, max_results=self.page_size, page_token=token
            ))
            result = []
            for experiment in experiments:
                runs = self._run_pages([experiment.experiment_id], None, None, None, False)
                result.append(ExperimentInfo(
                    experiment_id=str(experiment.experiment_id),
                    name=experiment.name,
                    lifecycle_stage=experiment.lifecycle_stage,
                    run_count=len(runs),
                    last_run_ms=max((r.info.start_time or 0 for r in runs), default=None),
                    artifact_location=experiment.artifact_location,
                ))
        return result

    def find_experiment(self, ref: str) -> tuple[str, str]:
        with self._errors("experiment", ref):
            experiment = self.client.get_experiment_by_name(ref)
            if experiment is None and ref.isdigit():
                try:
                    experiment = self.client.get_experiment(ref)
                except Exception as error:  # MLflow raises for an unknown id
                    if not is_not_found(error):
                        raise
                    experiment = None
        if experiment is None:
            raise NotFoundError("experiment", ref, "list them with: agentnn model experiments")
        return str(experiment.experiment_id), experiment.name

    # --- runs ----------------------------------------------------------------------------

    def _run_pages(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        order_by: list[str] | None,
        limit: int | None,
        include_deleted: bool,
    ) -> list[Run]:
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY

        def fetch(token: str | None) -> Iterable[Run]:
            size = self.page_size if limit is None else min(self.page_size, limit)
            return self.client.search_runs(
                experiment_ids, filter_string=filter_string or "", run_view_type=view,
                max_results=size, order_by=order_by or None, page_token=token,
            )

        return self._pages(fetch, limit)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        order_by: list[str] | None,
        limit: int | None,
        include_deleted: bool = False,
    ) -> list[RunInfo]:
        if not experiment_ids:
            return []
        with self._errors("filter", filter_string or "", ", ".join(order_by or [])):
            runs = self._run_pages(experiment_ids, filter_string, order_by, limit, include_deleted)
        return [run_info(run) for run in runs]

    def match_run_ids(self, prefix: str, limit: int) -> list[str]:
        """Ids of runs (any lifecycle stage) starting with ``prefix``, at most ``limit``."""
        from mlflow.entities import ViewType

        if not prefix.isalnum():  # run ids are hex; anything else matches nothing
            return []
        with self._errors():
            experiments = self._pages(lambda token: self.client.search_experiments(
                view_type=ViewType.ALL, max_results=self.page_size, page_token=token))
            ids = [str(experiment.experiment_id) for experiment in experiments]
            runs = self._run_pages(ids, f"attributes.run_id LIKE '{prefix}%'", None, limit,
                                   True) if ids else []
        return sorted(run.info.run_id for run in runs)

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        from agentnn.sdk import _registry

        with self._errors("registered model", name):
            return _registry.list_versions(self.client, name, self.page_size)

    def get_run(self, run_id: str) -> RunInfo:
        with self._errors("run", run_id):
            return run_info(self.client.get_run(run_id))

    def run_detail(self, run_id: str) -> RunDetail:
        run = self.get_run(run_id)
        with self._errors("run", run_id):
            client = self.client
            experiment = client.get_experiment(run.experiment_id)
            artifact_uri = client.get_run(run_id).info.artifact_uri
            children = [
                child.info.run_id for child in self._run_pages(
                    [run.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'",
                    ["attributes.start_time ASC"], None, False,
                )
            ]
            models = self._logged_model_ids(run.experiment_id, run_id)
            artifacts = self._artifacts(run_id)
        return RunDetail(
            run=run,
            experiment_name=experiment.name if experiment else None,
            artifact_uri=artifact_uri,
            artifacts=artifacts,
            child_run_ids=children,
            logged_model_ids=models,
        )

    def _logged_model_ids(self, experiment_id: str, run_id: str) -> list[str]:
        models = logged_models_of_run(self.client, experiment_id, run_id)
        return [model.model_id for model in models]

    def _artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        files: list[str] = []
        pending = [path]
        while pending and len(files) < ARTIFACT_LISTING_LIMIT:
            for info in self.client.list_artifacts(run_id, pending.pop()):
                (pending if info.is_dir else files).append(info.path)
        return sorted(files)

    def metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[MetricPoint]:
        """MLflow has no downsampling query: the whole history is fetched, then reduced."""
        self.get_run(run_id)
        with self._errors("run", run_id):
            history = self.client.get_metric_history(run_id, key)
        points = [MetricPoint(int(m.step), float(m.value), int(m.timestamp)) for m in history]
        return downsample(points, max_points)


def logged_models_of_run(client: MlflowClient, experiment_id: str,
                         run_id: str) -> list[LoggedModel]:
    """MLflow 3 LoggedModels whose source run is ``run_id``, oldest first."""
    try:
        models = client.search_logged_models(
            experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'",
        )
    except Exception as error:  # stores and servers older than MLflow 3 do not know them
        if lacks_logged_models(error):
            return []
        raise
    return sorted(models, key=lambda model: model.creation_timestamp or 0)
