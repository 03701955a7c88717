"""The app's read routes: what ``agentnn model`` and the SDK's ``ModelManager`` ask most.

One request each, answered with SQL on the database the server already holds open
(:mod:`agentnn.server.read_queries`), where MLflow's REST API needs a search page per 1,000 runs,
one call per experiment to count its runs, or the whole history of a metric to draw 2,000
points of it. Each route checks the caller's READ permission first (on the experiment, or on the
registered model) with MLflow's auth store (:mod:`agentnn.server.permissions`).

Routes, under ``/agentnn/api/v1`` (all GET, JSON; times in milliseconds since the epoch, a NaN
metric as the JSON literal ``NaN``):

    reads/experiments?include_deleted=      {"experiments": [...]}   only those the caller reads
    reads/experiment?ref=NAME_OR_ID         {"experiment_id", "name"}
    reads/runs?experiment=REF...&filter=&order_by=...&limit=&include_deleted=
                                            {"runs": [...]}; no experiment: every readable one
    reads/best?experiment=REF&metric=&mode=min|max
                                            {"run": {...} or null}
    reads/run?run_id=                       {"run": {...}, "experiment_name", "artifact_uri",
                                             "artifacts", "child_run_ids", "logged_model_ids"}
    reads/history?run_id=&key=&max_points=  {"points": [[step, value, timestamp], ...]}
    reads/versions?name=                    {"versions": [...]}
    reads/match?prefix=&limit=              {"run_ids": [...]}: ids starting with a short one,
                                            in experiments the caller reads

A question outside what the SQL knows (a filter beyond the common subset, an untested schema
revision, another workspace, a store that is not SQL) is answered 501 with error code
``NOT_IMPLEMENTED``: the client asks MLflow's REST API instead, which stays the judge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

from flask import Blueprint, Response, abort, request
from werkzeug.exceptions import HTTPException

from agentnn.mlflow_integration.journal.transfer import API_PREFIX
from agentnn.server import read_queries as queries
from agentnn.server.permissions import require, require_model, require_run

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = ["READS", "blueprint"]

PREFIX = f"{API_PREFIX}/reads"
# The routes, as the capabilities answer names them; a changed shape gets a new name.
READS = ("experiments", "experiment", "runs", "best", "run", "history", "versions", "match")
ARTIFACT_LISTING_LIMIT = 10_000  # files listed for one run before stopping, as the SDK does
BEST_RUN_PAGE = 20  # runs looked at for the best one not NaN, as the SDK does

blueprint = Blueprint("agentnn_reads", __name__, url_prefix=PREFIX)
# Engines whose schema passed the fence. The revision changes only by `mlflow db upgrade`, which
# a running server does not survive unchanged either (MLflow checks its schema at start).
_checked: dict[int, Engine] = {}


# --- plumbing ----------------------------------------------------------------------------


def _engine() -> Engine:
    """The SQLAlchemy engine of MLflow's tracking store in this server; 501 when not SQL."""
    from mlflow.server.handlers import _get_tracking_store

    engine: Engine | None = getattr(_get_tracking_store(), "engine", None)
    if engine is None:
        _fail(501, "NOT_IMPLEMENTED", "the tracking store is not a SQL database")
    return engine


@contextmanager
def _connection() -> Iterator[Connection]:
    """A read connection, fenced: only a tested schema in MLflow's default workspace."""
    from agentnn import config

    if config.mlflow_workspaces_requested() is not None:
        _fail(501, "NOT_IMPLEMENTED", "workspaces are enabled: MLflow resolves them")
    engine = _engine()
    with engine.connect() as connection:
        try:
            if _checked.get(id(engine)) is not engine:  # once per engine: two queries a request
                queries.check_schema(connection)
                _checked[id(engine)] = engine
            yield connection
        except queries.Unsupported as reason:
            _fail(501, "NOT_IMPLEMENTED", str(reason))


def _answer(data: dict[str, object]) -> Response:
    """JSON with NaN kept (Python's json reads it back), which MLflow's metrics may hold."""
    return Response(json.dumps(data, allow_nan=True), mimetype="application/json")


def _fail(status: int, code: str, message: str) -> NoReturn:
    response = Response(json.dumps({"error_code": code, "message": message}),
                        status=status, mimetype="application/json")
    abort(response)


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def _text(name: str) -> str:
    value = request.args.get(name, "")
    if not value:
        _fail(400, "INVALID_PARAMETER_VALUE", f"missing parameter {name!r}")
    return value


def _count(name: str, minimum: int) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        _fail(400, "INVALID_PARAMETER_VALUE", f"{name} must be an integer >= {minimum}")
    return value


def _experiment(connection: Connection, ref: str) -> tuple[str, str]:
    """(id, name) of an experiment the caller may read; 404 when there is none."""
    found = queries.find_experiment(connection, ref)
    if found is None:
        _fail(404, "RESOURCE_DOES_NOT_EXIST", f"no experiment named or numbered {ref!r}")
    require(found[0], "read")
    return found


def _readable(experiment_ids: list[str]) -> list[str]:
    """The ids the caller may read, asked one by one as MLflow's own listing filter does."""
    readable = []
    for experiment_id in experiment_ids:
        try:
            require(experiment_id, "read")
        except HTTPException as refusal:  # require() aborts with the 403 it would answer
            response = refusal.get_response()
            if response.status_code != 403:
                raise
            continue
        readable.append(experiment_id)
    return readable


# --- routes ------------------------------------------------------------------------------


@blueprint.get("/experiments")
def experiments() -> Response:
    with _connection() as connection:
        found = queries.list_experiments(connection, _flag("include_deleted"))
        readable = set(_readable([str(e["experiment_id"]) for e in found]))
    return _answer({"experiments": [e for e in found if e["experiment_id"] in readable]})


@blueprint.get("/experiment")
def experiment() -> Response:
    with _connection() as connection:
        experiment_id, name = _experiment(connection, _text("ref"))
    return _answer({"experiment_id": experiment_id, "name": name})


@blueprint.get("/runs")
def runs() -> Response:
    refs = request.args.getlist("experiment")
    with _connection() as connection:
        if refs:
            ids = [_experiment(connection, ref)[0] for ref in refs]
        else:
            ids = _readable([str(e["experiment_id"])
                             for e in queries.list_experiments(connection, False)])
        found = _search(connection, ids, request.args.get("filter") or None,
                        request.args.getlist("order_by"), _count("limit", 1),
                        _flag("include_deleted"))
    return _answer({"runs": found})


@blueprint.get("/best")
def best() -> Response:
    """The finished run with the lowest or highest final metric, NaN skipped, as
    ``ModelManager.best_run`` finds it."""
    from agentnn.mlflow_integration.run.queries import best_run_query

    mode = request.args.get("mode", "min")
    if mode not in ("min", "max"):
        _fail(400, "INVALID_PARAMETER_VALUE", "mode must be min or max")
    metric = _text("metric")
    filter_string, order_by = best_run_query(metric, mode)
    with _connection() as connection:
        experiment_id, _ = _experiment(connection, _text("experiment"))
        for limit in (BEST_RUN_PAGE, None):  # a full look only if the first page was all NaN
            found = _search(connection, [experiment_id], filter_string, [order_by], limit, False)
            for candidate in found:
                metrics = candidate["metrics"]
                value = metrics.get(metric) if isinstance(metrics, dict) else None
                if isinstance(value, float) and not math.isnan(value):
                    return _answer({"run": candidate})
            if len(found) < BEST_RUN_PAGE:
                break
    return _answer({"run": None})


@blueprint.get("/run")
def run() -> Response:
    run_id = _text("run_id")
    require_run(run_id, "read")
    with _connection() as connection:
        detail = queries.run_detail(connection, run_id)
    if detail is None:
        _fail(404, "RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found")
    detail["artifacts"] = _artifact_files(str(detail["artifact_uri"] or ""))
    return _answer(detail)


@blueprint.get("/history")
def history() -> Response:
    run_id, key = _text("run_id"), _text("key")
    max_points = _count("max_points", 4)
    require_run(run_id, "read")
    with _connection() as connection:
        if queries.experiment_of_run(connection, run_id) is None:
            _fail(404, "RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found")
        points = queries.metric_history(connection, run_id, key, max_points)
    return _answer({"points": [[p.step, p.value, p.timestamp_ms] for p in points]})


@blueprint.get("/versions")
def versions() -> Response:
    name = _text("name")
    require_model(name)
    with _connection() as connection:
        if not queries.registered_model_exists(connection, name):
            _fail(404, "RESOURCE_DOES_NOT_EXIST", f"Registered Model with name={name} not found")
        found = queries.list_versions(connection, name)
    return _answer({"versions": found})


@blueprint.get("/match")
def match() -> Response:
    """The runs a short id names (tables show 8 characters), as MLflow's REST API finds them:
    in the experiments the caller may read, deleted runs included."""
    prefix, limit = _text("prefix"), _count("limit", 1)
    with _connection() as connection:
        found = queries.match_run_ids(connection, prefix)
        readable = set(_readable(sorted({experiment_id for _, experiment_id in found})))
    run_ids = [run_id for run_id, experiment_id in found if experiment_id in readable]
    return _answer({"run_ids": run_ids[:limit] if limit is not None else run_ids})


# --- helpers -----------------------------------------------------------------------------


def _search(connection: Connection, ids: list[str], filter_string: str | None,
            order_by: list[str], limit: int | None,
            include_deleted: bool) -> list[dict[str, object]]:
    try:
        return queries.search_runs(connection, ids, filter_string, order_by, limit,
                                   include_deleted)
    except queries.Unsupported as reason:
        _fail(501, "NOT_IMPLEMENTED", str(reason))


def _artifact_files(artifact_uri: str) -> list[str]:
    """Every artifact file of a run, relative to its root, through MLflow's own repository
    (the proxied destination for ``mlflow-artifacts:`` roots)."""
    if not artifact_uri:
        return []
    from mlflow.server import handlers

    list_folder: Callable[[str | None], list[object]]
    if handlers._is_servable_proxied_run_artifact_root(artifact_uri):
        def list_folder(path: str | None) -> list[object]:
            return list(handlers._list_artifacts_for_proxied_run_artifact_root(
                proxied_artifact_root=artifact_uri, relative_path=path))
    else:
        repository = handlers._get_artifact_repository_for_uri(artifact_uri)

        def list_folder(path: str | None) -> list[object]:
            return list(repository.list_artifacts(path))

    files: list[str] = []
    pending: list[str | None] = [None]
    while pending and len(files) < ARTIFACT_LISTING_LIMIT:
        for info in list_folder(pending.pop()):
            path = str(getattr(info, "path", ""))
            if getattr(info, "is_dir", False):
                pending.append(path)
            else:
                files.append(path)
    return sorted(files)
