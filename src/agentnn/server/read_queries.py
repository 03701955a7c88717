"""The SQL behind the app's fast reads: MLflow's own tables, answered as MLflow answers.

``agentnn model runs`` on a team server costs a REST search page per 1,000 runs, and each
request's password hash; the app answers the same questions with one SQL query each, on the
database the server already holds open. Every function here is pure: a SQLAlchemy connection
in, plain data out (the wire shapes of :mod:`agentnn.server.reads`), no Flask, no permission
check (the blueprint does that before it calls).

Fenced like the direct SQLite reader (:mod:`agentnn.sdk._sqlite_reader`): the semantics are
MLflow 3.17's for one schema, so only the revisions in :data:`TESTED_SCHEMA_REVISIONS` are
served, only in MLflow's default workspace, and only the common subset of the search syntax
(:func:`agentnn.sdk.parse_filter`); anything else raises :class:`Unsupported` and the client
asks MLflow's REST API instead. The answers are compared with MLflow's REST API run for run in
tests/team/test_fast_reads.py.

Dialect-neutral SQL (named binds, ``TRUE``/``FALSE``, no ``rowid``): PostgreSQL, MySQL and
SQLite alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import BindParameter, Connection, bindparam, text

from agentnn.sdk import (
    ATTRIBUTE,
    ATTRIBUTE_COLUMNS,
    METRIC,
    PARAM,
    Comparison,
    MetricPoint,
    OrderBy,
    downsample,
    parse_filter,
    parse_order_by,
)

# Schema revisions whose semantics were compared with MLflow's (3.17's head); others: REST.
TESTED_SCHEMA_REVISIONS = frozenset({"dc11669786a5"})
DEFAULT_WORKSPACE = "default"  # where MLflow keeps everything unless workspaces are enabled
CHUNK = 500  # ids per IN (...) list
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
MODEL_ID_TAG = "agentnn.model_id"  # set on a version by agentnn's register (see sdk/_registry)
DELETED_VERSION_STAGE = "Deleted_Internal"  # MLflow's mark on a deleted model version

Json = dict[str, object]


class Unsupported(Exception):
    """Outside what these queries know (schema, workspace, search syntax): ask MLflow."""


@dataclass(frozen=True)
class Schema:
    """What the fence found: the revision, and whether tables carry a workspace column."""

    revision: str
    workspaces: bool


def check_schema(connection: Connection) -> Schema:
    """The store's schema, if these queries serve it; else :class:`Unsupported`."""
    from sqlalchemy.exc import DBAPIError

    try:
        revisions = {row[0] for row in connection.execute(
            text("SELECT version_num FROM alembic_version"))}
    except DBAPIError as error:  # no alembic_version: not a schema MLflow made
        raise Unsupported(f"no MLflow schema revision: {error.orig}") from None
    if len(revisions) != 1 or not revisions <= TESTED_SCHEMA_REVISIONS:
        raise Unsupported(f"schema revision {', '.join(sorted(revisions)) or 'none'} is not one "
                          f"the fast reads were tested against")
    workspaces = connection.execute(text(
        "SELECT COUNT(*) FROM experiments WHERE workspace <> :workspace"),
        {"workspace": DEFAULT_WORKSPACE}).scalar_one()
    if workspaces:
        raise Unsupported("the store holds experiments of other workspaces")
    return Schema(revision=revisions.pop(), workspaces=True)


# --- experiments -------------------------------------------------------------------------


def list_experiments(connection: Connection, include_deleted: bool) -> list[Json]:
    """Every experiment with its count of active runs and the newest active run's start."""
    stages = ["active", "deleted"] if include_deleted else ["active"]
    rows = connection.execute(text(
        "SELECT e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location, "
        "COUNT(r.run_uuid), MAX(r.start_time) FROM experiments e "
        "LEFT JOIN runs r ON r.experiment_id = e.experiment_id AND r.lifecycle_stage = 'active' "
        "WHERE e.lifecycle_stage IN :stages "
        "GROUP BY e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location "
        "ORDER BY e.experiment_id"
    ).bindparams(_expanding("stages")), {"stages": stages})
    return [
        {"experiment_id": str(eid), "name": name, "lifecycle_stage": stage,
         "artifact_location": location, "run_count": int(count),
         "last_run_ms": None if last is None else int(last)}
        for eid, name, stage, location, count, last in rows
    ]


def find_experiment(connection: Connection, ref: str) -> tuple[str, str] | None:
    """(id, name) of the experiment named ``ref``, else with id ``ref``; None when neither."""
    row = connection.execute(text("SELECT experiment_id, name FROM experiments WHERE name = :n"),
                             {"n": ref}).first()
    if row is None and ref.isdigit() and int(ref) < 2**31:
        row = connection.execute(text(
            "SELECT experiment_id, name FROM experiments WHERE experiment_id = :id"),
            {"id": int(ref)}).first()
    return None if row is None else (str(row[0]), str(row[1]))


def experiment_of_run(connection: Connection, run_id: str) -> str | None:
    """The experiment a run belongs to (what its permission is checked on); None if unknown."""
    value = connection.execute(text("SELECT experiment_id FROM runs WHERE run_uuid = :r"),
                               {"r": run_id}).scalar()
    return None if value is None else str(value)


# --- runs --------------------------------------------------------------------------------


def search_runs(
    connection: Connection,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str],
    limit: int | None,
    include_deleted: bool = False,
) -> list[Json]:
    """Runs as MLflow's search orders them (missing and NaN last, then newest first)."""
    comparisons = parse_filter(filter_string)
    orders = parse_order_by(list(order_by))
    if comparisons is None or orders is None:
        raise Unsupported("search clause outside the fast reads' subset")
    if not experiment_ids:
        return []
    binds: dict[str, object] = {
        "experiments": [int(eid) for eid in experiment_ids],
        "stages": ["active", "deleted"] if include_deleted else ["active"],
    }
    where = ["r.experiment_id IN :experiments", "r.lifecycle_stage IN :stages"]
    for number, comparison in enumerate(comparisons):
        where.append(_filter_sql(comparison, f"f{number}", binds))
    joins, terms = _order_sql(orders, binds)
    sql = ("SELECT r.run_uuid FROM runs r " + " ".join(joins) + " WHERE " + " AND ".join(where)
           + " ORDER BY " + ", ".join(terms))
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    statement = text(sql).bindparams(_expanding("experiments"), _expanding("stages"))
    run_ids = [row[0] for row in connection.execute(statement, binds)]
    return runs_by_id(connection, run_ids)


def runs_by_id(connection: Connection, run_ids: Sequence[str]) -> list[Json]:
    """Each run with its latest metrics, params and tags, in the given order; unknown left out."""
    base: dict[str, Sequence[object]] = {}
    metrics: dict[str, dict[str, float]] = {run_id: {} for run_id in run_ids}
    params: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
    tags: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
    for start in range(0, len(run_ids), CHUNK):
        chunk = {"ids": list(run_ids[start:start + CHUNK])}
        ids = _expanding("ids")
        for row in connection.execute(text(
                "SELECT run_uuid, name, experiment_id, status, start_time, end_time, "
                "lifecycle_stage FROM runs WHERE run_uuid IN :ids").bindparams(ids), chunk):
            base[row[0]] = tuple(row)
        for run_id, key, value, is_nan in connection.execute(text(
                "SELECT run_uuid, key, value, is_nan FROM latest_metrics "
                "WHERE run_uuid IN :ids").bindparams(ids), chunk):
            metrics[run_id][key] = math.nan if is_nan else float(value)
        for table, target in (("params", params), ("tags", tags)):
            for run_id, key, value in connection.execute(text(
                    f"SELECT run_uuid, key, value FROM {table} "
                    "WHERE run_uuid IN :ids").bindparams(ids), chunk):
                target[run_id][key] = value
    runs: list[Json] = []
    for run_id in run_ids:
        if run_id not in base:
            continue
        _, name, experiment_id, status, start_ms, end_ms, stage = base[run_id]
        runs.append({
            "run_id": run_id,
            "run_name": name or tags[run_id].get(RUN_NAME_TAG),
            "experiment_id": str(experiment_id),
            "status": status,
            "start_time_ms": start_ms,
            "end_time_ms": end_ms,
            "metrics": metrics[run_id],
            "params": params[run_id],
            "tags": tags[run_id],
            "lifecycle_stage": stage,
        })
    return runs


def run_detail(connection: Connection, run_id: str) -> Json | None:
    """One run whole, as ``agentnn model show`` needs it, but for its artifact files (the
    blueprint lists those through MLflow's artifact repository); None for an unknown run."""
    runs = runs_by_id(connection, [run_id])
    if not runs:
        return None
    run = runs[0]
    experiment_name, artifact_uri = connection.execute(text(
        "SELECT e.name, r.artifact_uri FROM runs r LEFT JOIN experiments e "
        "ON e.experiment_id = r.experiment_id WHERE r.run_uuid = :r"), {"r": run_id}).one()
    children = [row[0] for row in connection.execute(text(
        "SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE t.key = :parent AND t.value = :r AND r.experiment_id = :experiment "
        "AND r.lifecycle_stage = 'active' "
        "ORDER BY CASE WHEN r.start_time IS NULL THEN 1 ELSE 0 END, r.start_time, r.run_uuid"),
        {"parent": PARENT_RUN_TAG, "r": run_id, "experiment": int(str(run["experiment_id"]))})]
    models = [row[0] for row in connection.execute(text(
        "SELECT model_id FROM logged_models WHERE source_run_id = :r "
        "AND experiment_id = :experiment "
        "AND (lifecycle_stage IS NULL OR lifecycle_stage = 'active') "
        "ORDER BY creation_timestamp_ms, model_id"),
        {"r": run_id, "experiment": int(str(run["experiment_id"]))})]
    return {"run": run, "experiment_name": experiment_name, "artifact_uri": artifact_uri,
            "child_run_ids": children, "logged_model_ids": models}


def metric_history(
    connection: Connection, run_id: str, key: str, max_points: int | None
) -> list[MetricPoint]:
    """Every point of ``key``, or at most ``max_points`` chosen by the SDK's own downsampling
    (first, last, smallest and largest of each step bucket)."""
    rows = connection.execute(text(
        "SELECT step, value, timestamp, is_nan FROM metrics WHERE run_uuid = :r AND key = :k"),
        {"r": run_id, "k": key})
    points = [MetricPoint(int(step), math.nan if is_nan else float(value), int(timestamp))
              for step, value, timestamp, is_nan in rows]
    return downsample(points, max_points)


def match_run_ids(connection: Connection, prefix: str) -> list[tuple[str, str]]:
    """(run id, experiment id) of every run, deleted or not, whose id starts with ``prefix``;
    nothing for a prefix that is not alphanumeric (run ids are hex)."""
    if not prefix.isalnum():
        return []
    return [(str(run_id), str(experiment_id)) for run_id, experiment_id in connection.execute(
        text("SELECT run_uuid, experiment_id FROM runs WHERE run_uuid LIKE :p "
             "ORDER BY run_uuid"), {"p": prefix + "%"})]


# --- registry ----------------------------------------------------------------------------


def registered_model_exists(connection: Connection, name: str) -> bool:
    return connection.execute(text("SELECT 1 FROM registered_models WHERE name = :n"),
                              {"n": name}).first() is not None


def list_versions(connection: Connection, name: str) -> list[Json]:
    """Versions of ``name``, newest first, with aliases and the latest metrics of their run."""
    aliases: dict[int, list[str]] = {}
    for alias, version in connection.execute(text(
            "SELECT alias, version FROM registered_model_aliases WHERE name = :n"), {"n": name}):
        aliases.setdefault(int(version), []).append(alias)
    model_ids: dict[int, str] = dict(connection.execute(text(
        "SELECT version, value FROM model_version_tags WHERE name = :n AND key = :k"),
        {"n": name, "k": MODEL_ID_TAG}).all())
    rows = connection.execute(text(
        "SELECT version, run_id, source, status, creation_time, current_stage "
        "FROM model_versions WHERE name = :n AND current_stage <> :deleted "
        "ORDER BY version DESC"), {"n": name, "deleted": DELETED_VERSION_STAGE}).all()
    run_ids = sorted({row[1] for row in rows if row[1]})
    metrics = {run["run_id"]: run["metrics"] for run in runs_by_id(connection, run_ids)}
    versions: list[Json] = []
    for version, run_id, source, status, created, stage in rows:
        model_id = model_ids.get(version) or (
            source[len("models:/"):] if (source or "").startswith("models:/m-") else None)
        versions.append({
            "name": name, "version": int(version), "aliases": sorted(aliases.get(version, [])),
            "run_id": run_id or None, "source": source, "status": status,
            "created_ms": created, "model_id": model_id,
            "run_metrics": metrics.get(run_id, {}) if run_id else {},
            "stage": stage if stage and stage != "None" else None,
        })
    return versions


# --- search clauses ----------------------------------------------------------------------


def _expanding(name: str) -> BindParameter[object]:
    """A bound list, expanded to ``IN (...)`` for any dialect."""
    return bindparam(name, expanding=True)


def _number(value: str | float) -> object:
    """A bound number: an int where it is one (BIGINT columns compare exactly)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _filter_sql(comparison: Comparison, bind: str, binds: dict[str, object]) -> str:
    """One WHERE clause with MLflow's meaning, including its NaN rules for metrics."""
    op = comparison.op
    binds[bind] = comparison.value
    if comparison.entity == ATTRIBUTE:
        if comparison.key == "run_name":  # MLflow compares the run-name tag, as here
            binds[bind + "k"] = RUN_NAME_TAG
            return (f"EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid "
                    f"AND t.key = :{bind}k AND t.value {op} :{bind})")
        column = ATTRIBUTE_COLUMNS[comparison.key][0]
        if ATTRIBUTE_COLUMNS[comparison.key][1]:
            binds[bind] = _number(comparison.value)
        return f"r.{column} {op} :{bind}"
    binds[bind + "k"] = comparison.key
    if comparison.entity == METRIC:
        nan_rule = "OR m.is_nan = TRUE" if op == "!=" else "AND m.is_nan = FALSE"
        return (f"EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid "
                f"AND m.key = :{bind}k AND (m.value {op} :{bind} {nan_rule}))")
    table = "params" if comparison.entity == PARAM else "tags"
    return (f"EXISTS (SELECT 1 FROM {table} p WHERE p.run_uuid = r.run_uuid "
            f"AND p.key = :{bind}k AND p.value {op} :{bind})")


def _order_sql(orders: Sequence[OrderBy], binds: dict[str, object]) -> tuple[list[str], list[str]]:
    """Joins and ORDER BY terms as MLflow orders: missing and NaN last, newest first, by id."""
    joins: list[str] = []
    terms: list[str] = []
    tables: Mapping[str, str] = {"metric": "latest_metrics", "param": "params", "tag": "tags"}
    for number, order in enumerate(orders):
        direction = "" if order.ascending else " DESC"
        if order.entity == ATTRIBUTE:
            column = f"r.{ATTRIBUTE_COLUMNS[order.key][0]}"
            terms += [f"CASE WHEN {column} IS NULL THEN 1 ELSE 0 END", column + direction]
            continue
        alias = f"o{number}"
        binds[alias] = order.key
        joins.append(f"LEFT JOIN {tables[order.entity]} {alias} "
                     f"ON {alias}.run_uuid = r.run_uuid AND {alias}.key = :{alias}")
        if order.entity == METRIC:
            terms.append(f"CASE WHEN {alias}.is_nan = TRUE THEN 1 "
                         f"WHEN {alias}.value IS NULL THEN 2 ELSE 0 END")
        else:
            terms.append(f"CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END")
        terms.append(f"{alias}.value{direction}")
    if not any(o.entity == ATTRIBUTE and o.key in ("start_time", "created") for o in orders):
        terms.append("r.start_time DESC")
    terms.append("r.run_uuid")
    return joins, terms
