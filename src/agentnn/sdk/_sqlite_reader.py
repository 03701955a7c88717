"""Read-only answers straight from an MLflow SQLite store, without importing MLflow.

``import mlflow`` alone costs about two seconds here, far more than any query on the store,
so listing commands on the embedded store read MLflow's tables with the standard library.
The reader opens the database read-only and follows the semantics of MLflow's own SQL
search (NaN metrics sort after numbers, missing values last, then newest first). It knows
only the common subset of the search syntax (:mod:`agentnn.sdk._search`); for anything else,
or when the schema is not what it expects, it raises :class:`Unsupported` and the caller asks
MLflow instead.

It is fenced twice. It copies MLflow's semantics for one schema, so it serves only the schema
revisions (``alembic_version``) in :data:`TESTED_SCHEMA_REVISIONS`, which a test compares
against MLflow answer by answer (tests/sdk/test_sdk_reader_agreement.py); any other revision
goes to MLflow. And it reads only the workspace MLflow itself uses for the store: MLflow 3.17
runs a SQL store single-tenant unless workspaces are enabled, and then writes every experiment
into its default workspace, recorded on the ``Default`` experiment (id 0) it creates first; a
store holding experiments of other workspaces is left to MLflow.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from agentnn import config
from agentnn.errors import NotFoundError
from agentnn.sdk import _search
from agentnn.sdk._downsample import bucket_count
from agentnn.sdk._records import (
    RUN_NAME_TAG,
    ExperimentInfo,
    MetricPoint,
    ModelVersionInfo,
    RunDetail,
    RunInfo,
)

CHUNK = 500  # ids per IN (...) clause, well under SQLite's variable limit
Row = tuple[Any, ...]  # a sqlite3 row: each column's value, of whatever type SQLite stored
ARTIFACT_LISTING_LIMIT = 10_000  # files listed for one run before stopping
DEFAULT_EXPERIMENT_ID = 0  # MLflow creates it first, in the store's default workspace
DELETED_VERSION_STAGE = "Deleted_Internal"  # MLflow's mark on a deleted version's row
MODEL_ID_TAG = "agentnn.model_id"  # on a version, as agentnn registers it (see _registry)
# Schema revisions this reader was tested against (MLflow 3.17's head); others go to MLflow.
TESTED_SCHEMA_REVISIONS = frozenset({"dc11669786a5"})

logger = logging.getLogger(__name__)

# Whether a history exceeds a budget (:cap is budget + 1), and its step range.
SIZE_SQL = """
SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM metrics WHERE run_uuid = :run AND key = :key
                              LIMIT :cap)),
       (SELECT MIN(step) FROM metrics WHERE run_uuid = :run AND key = :key),
       (SELECT MAX(step) FROM metrics WHERE run_uuid = :run AND key = :key)
"""
# One statement downsamples a history (see agentnn.sdk._downsample): the step range is cut into
# :n half-open buckets, and each keeps its first and last point (by step, then time) and its
# smallest and largest value. Each pick is an index seek on (run_uuid, key, step).
BUCKETS_SQL = """
WITH RECURSIVE bucket(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM bucket WHERE i + 1 < :n),
span(lo, hi) AS (SELECT :first + (i * :span) / :n, :first + ((i + 1) * :span) / :n FROM bucket)
SELECT m.step, m.value, m.timestamp, m.is_nan FROM span JOIN metrics m ON m.rowid IN (
  (SELECT rowid FROM metrics WHERE run_uuid = :run AND key = :key AND step >= lo AND step < hi
   ORDER BY step, timestamp LIMIT 1),
  (SELECT rowid FROM metrics WHERE run_uuid = :run AND key = :key AND step >= lo AND step < hi
   ORDER BY step DESC, timestamp DESC LIMIT 1),
  (SELECT rowid FROM metrics WHERE run_uuid = :run AND key = :key AND step >= lo AND step < hi
   AND is_nan = 0 ORDER BY value LIMIT 1),
  (SELECT rowid FROM metrics WHERE run_uuid = :run AND key = :key AND step >= lo AND step < hi
   AND is_nan = 0 ORDER BY value DESC LIMIT 1))
"""


class Unsupported(Exception):
    """This query or store is outside what the direct reader knows; ask MLflow."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for in-memory or other schemes."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path("/" + path.lstrip("/")) if uri.startswith("sqlite:////") else Path(path)


class SqliteReader:
    """Answers the read-only questions of :class:`ModelManager` from the SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._workspace: str | None = None

    # --- connection ----------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            try:
                self._connection = sqlite3.connect(uri, uri=True, timeout=30)
                tables = {
                    row[0] for row in self._connection.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                    )
                }
            except sqlite3.Error as error:
                raise Unsupported(str(error)) from error
            if not {"experiments", "runs", "latest_metrics", "params", "tags",
                    "alembic_version"} <= tables:
                self.close()
                raise Unsupported("not an MLflow tracking database")
            try:
                self._check_revision()
                self._workspace = self._store_workspace()
            except Unsupported:
                self.close()
                raise
        return self._connection

    def _check_revision(self) -> None:
        """Serve only the schema revisions the reader's semantics were tested against."""
        assert self._connection is not None
        revisions = {row[0] for row in self._connection.execute(
            "SELECT version_num FROM alembic_version")}
        if not revisions <= TESTED_SCHEMA_REVISIONS or not revisions:
            raise Unsupported(
                f"schema revision {', '.join(sorted(revisions)) or 'none'} of {self.path} is not "
                f"one the direct reader was tested against ({', '.join(TESTED_SCHEMA_REVISIONS)})"
            )

    def _store_workspace(self) -> str | None:
        """The workspace MLflow reads in single-tenant mode: the one it gave its first experiment.

        None when the schema has no workspaces. A store with experiments in other workspaces is
        MLflow's to answer (it refuses it unless workspaces are enabled).
        """
        assert self._connection is not None
        requested = config.mlflow_workspaces_requested()
        if requested is not None:
            raise Unsupported(f"{requested} is set: MLflow resolves the workspace")
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(experiments)")}
        if "workspace" not in columns:
            return None
        rows = self._connection.execute(
            "SELECT workspace FROM experiments WHERE experiment_id = ?", (DEFAULT_EXPERIMENT_ID,)
        ).fetchall()
        if not rows or rows[0][0] is None:
            raise Unsupported("the store has no default experiment to take MLflow's workspace from")
        workspace: str = rows[0][0]
        others = self._connection.execute(
            "SELECT COUNT(*) FROM experiments WHERE workspace IS NOT NULL AND workspace != ?",
            (workspace,),
        ).fetchone()[0]
        if others:
            raise Unsupported(f"the store holds experiments of workspaces other than {workspace!r}")
        return workspace

    def _rows(self, sql: str, args: Sequence[object] | Mapping[str, object] = ()) -> list[Row]:
        try:
            return self._db().execute(sql, args).fetchall()
        except sqlite3.Error as error:
            raise Unsupported(str(error)) from error

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _workspace_clause(self, alias: str = "e") -> str:
        """SQL restricting experiments to MLflow's workspace (quoted: it came from the file)."""
        self._db()
        if self._workspace is None:
            return ""
        quoted = self._workspace.replace("'", "''")
        return f" AND {alias}.workspace = '{quoted}'"

    # --- experiments ---------------------------------------------------------------------

    def list_experiments(self, include_deleted: bool) -> list[ExperimentInfo]:
        if not self.exists:
            return []
        stages = ("active", "deleted") if include_deleted else ("active",)
        rows = self._rows(
            "SELECT e.experiment_id, e.name, e.lifecycle_stage, e.artifact_location, "
            "(SELECT COUNT(*) FROM runs r WHERE r.experiment_id = e.experiment_id "
            " AND r.lifecycle_stage = 'active'), "
            "(SELECT MAX(r.start_time) FROM runs r WHERE r.experiment_id = e.experiment_id "
            " AND r.lifecycle_stage = 'active') "
            f"FROM experiments e WHERE e.lifecycle_stage IN ({_marks(stages)})"
            + self._workspace_clause(),
            stages,
        )
        return [
            ExperimentInfo(str(eid), name, stage, count, last, location)
            for eid, name, stage, location, count, last in rows
        ]

    def find_experiment(self, ref: str) -> tuple[str, str]:
        """(id, name) of the experiment named ``ref``, or with id ``ref``."""
        if self.exists:
            rows = self._rows(
                "SELECT e.experiment_id, e.name FROM experiments e WHERE e.name = ?"
                + self._workspace_clause(), (ref,),
            )
            if not rows and ref.isdigit():
                rows = self._rows(
                    "SELECT e.experiment_id, e.name FROM experiments e WHERE e.experiment_id = ?"
                    + self._workspace_clause(), (int(ref),),
                )
            if rows:
                return str(rows[0][0]), rows[0][1]
        raise NotFoundError("experiment", ref, "list them with: agentnn model experiments")

    # --- runs ----------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        order_by: list[str] | None,
        limit: int | None,
        include_deleted: bool = False,
    ) -> list[RunInfo]:
        comparisons = _search.parse_filter(filter_string)
        orders = _search.parse_order_by(order_by)
        if comparisons is None or orders is None:
            raise Unsupported("search clause outside the direct reader's subset")
        if not self.exists or not experiment_ids:
            return []
        stages = ("active", "deleted") if include_deleted else ("active",)
        where = [
            f"r.experiment_id IN ({_marks(experiment_ids)})",
            f"r.lifecycle_stage IN ({_marks(stages)})",
        ]
        args: list[object] = [int(eid) for eid in experiment_ids] + list(stages)
        for comparison in comparisons:
            clause, clause_args = _filter_sql(comparison)
            where.append(clause)
            args.extend(clause_args)
        joins, order_sql, join_args = _order_sql(orders)
        sql = (
            "SELECT r.run_uuid FROM runs r " + " ".join(joins)
            + " WHERE " + " AND ".join(where) + " ORDER BY " + ", ".join(order_sql)
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        run_ids = [row[0] for row in self._rows(sql, join_args + args)]
        return self.runs_by_id(run_ids)

    def runs_by_id(self, run_ids: list[str]) -> list[RunInfo]:
        """RunInfo for each id, in the given order; unknown ids are left out."""
        base: dict[str, Row] = {}
        metrics: dict[str, dict[str, float]] = {run_id: {} for run_id in run_ids}
        params: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        tags: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        for start in range(0, len(run_ids), CHUNK):
            chunk = run_ids[start:start + CHUNK]
            marks = _marks(chunk)
            for row in self._rows(
                "SELECT run_uuid, name, experiment_id, status, start_time, end_time, "
                f"lifecycle_stage FROM runs WHERE run_uuid IN ({marks})", chunk,
            ):
                base[row[0]] = row
            for run_id, key, value, is_nan in self._rows(
                "SELECT run_uuid, key, value, is_nan FROM latest_metrics "
                f"WHERE run_uuid IN ({marks})", chunk,
            ):
                metrics[run_id][key] = float("nan") if is_nan else float(value)
            for table, target in (("params", params), ("tags", tags)):
                for run_id, key, value in self._rows(
                    f"SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN ({marks})", chunk,
                ):
                    target[run_id][key] = value
        runs = []
        for run_id in run_ids:
            if run_id not in base:
                continue
            _, name, experiment_id, status, start, end, stage = base[run_id]
            runs.append(RunInfo(
                run_id=run_id,
                run_name=name or tags[run_id].get(RUN_NAME_TAG),
                experiment_id=str(experiment_id),
                status=status,
                start_time_ms=start,
                end_time_ms=end,
                metrics=metrics[run_id],
                params=params[run_id],
                tags=tags[run_id],
                lifecycle_stage=stage,
            ))
        return runs

    def match_run_ids(self, prefix: str, limit: int) -> list[str]:
        """Ids of runs (any lifecycle stage) starting with ``prefix``, at most ``limit``."""
        if not self.exists:
            return []
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._rows(
            "SELECT r.run_uuid FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE r.run_uuid LIKE ? ESCAPE '\\'" + self._workspace_clause()
            + f" ORDER BY r.run_uuid LIMIT {int(limit)}", (escaped + "%",),
        )
        return [row[0] for row in rows]

    def get_run(self, run_id: str) -> RunInfo:
        runs = self.runs_by_id([run_id]) if self.exists else []
        if not runs:
            raise NotFoundError("run", run_id)
        return runs[0]

    def run_detail(self, run_id: str) -> RunDetail:
        run = self.get_run(run_id)
        (artifact_uri,), = self._rows("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (run_id,))
        artifacts = list_local_artifacts(artifact_uri)
        if artifacts is None:
            raise Unsupported("artifacts are not on a local path")
        names = self._rows(
            "SELECT e.name FROM experiments e WHERE e.experiment_id = ?", (int(run.experiment_id),)
        )
        children = [
            row[0] for row in self._rows(
                "SELECT t.run_uuid FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
                "WHERE t.key = 'mlflow.parentRunId' AND t.value = ? "
                "AND r.lifecycle_stage = 'active' "
                "ORDER BY r.start_time, r.run_uuid", (run_id,),
            )
        ]
        try:
            models = [
                row[0] for row in self._rows(
                    "SELECT model_id FROM logged_models WHERE source_run_id = ? AND "
                    "(lifecycle_stage IS NULL OR lifecycle_stage = 'active') "
                    "ORDER BY creation_timestamp_ms", (run_id,),
                )
            ]
        except Unsupported:  # stores made before MLflow 3 have no logged_models table
            models = []
        return RunDetail(
            run=run,
            experiment_name=names[0][0] if names else None,
            artifact_uri=artifact_uri,
            artifacts=artifacts,
            child_run_ids=children,
            logged_model_ids=models,
        )

    # --- registry ------------------------------------------------------------------------

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """Every version of registered model ``name``, newest first, as
        :func:`agentnn.sdk._registry.list_versions` reads them through MLflow."""
        workspace = self._registry_workspace_clause()
        found = self._rows("SELECT name FROM registered_models WHERE name = ?" + workspace,
                           (name,)) if self.exists else []
        if not found:
            raise NotFoundError("registered model", name,
                                "list versions of a known name or register one first")
        versions = self._rows(
            "SELECT version, run_id, source, status, creation_time, current_stage "
            "FROM model_versions WHERE name = ? AND (current_stage IS NULL OR current_stage != ?)"
            + workspace + " ORDER BY version DESC", (name, DELETED_VERSION_STAGE),
        )
        aliases: dict[int, list[str]] = {}
        for alias, version in self._rows(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ?" + workspace,
            (name,),
        ):
            aliases.setdefault(int(version), []).append(alias)
        model_ids = {
            int(version): value for version, value in self._rows(
                "SELECT version, value FROM model_version_tags WHERE name = ? AND key = ?"
                + workspace, (name, MODEL_ID_TAG))
        }
        runs = {run.run_id: run for run in self.runs_by_id(
            sorted({row[1] for row in versions if row[1]}))}
        infos = []
        for version, run_id, source, status, created, stage in versions:
            run = runs.get(run_id) if run_id else None
            model_id = model_ids.get(int(version))
            if not model_id and (source or "").startswith("models:/m-"):
                model_id = source[len("models:/"):]
            infos.append(ModelVersionInfo(
                name=name, version=int(version), aliases=sorted(aliases.get(int(version), [])),
                run_id=run_id or None, source=source, status=status, created_ms=created,
                model_id=model_id or None, run_metrics=dict(run.metrics) if run else {},
                stage=stage if stage and stage != "None" else None,
            ))
        return infos

    def store_workspace(self) -> str | None:
        """MLflow's workspace in this store (None: no workspaces), once the store, its schema
        revision and its registry tables are checked; raises :class:`Unsupported` otherwise."""
        self._registry_workspace_clause()
        return self._workspace

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        """Rows of a read-only query; :class:`Unsupported` on any SQLite error."""
        return self._rows(sql, args)

    def _registry_workspace_clause(self) -> str:
        """The registry tables of MLflow's workspace (see :meth:`_store_workspace`)."""
        self._db()
        tables = {row[0] for row in self._rows(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"registered_models", "model_versions", "registered_model_aliases",
                "model_version_tags"} <= tables:
            raise Unsupported("the store has no model registry tables")
        if self._workspace is None:
            return ""
        return f" AND workspace = '{self._workspace.replace(chr(39), chr(39) * 2)}'"

    def metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[MetricPoint]:
        """Every point, or with ``max_points`` the extremes :data:`BUCKETS_SQL` picks."""
        self.get_run(run_id)
        count = first = last = 0
        if max_points is not None:  # index seeks; the count stops once it passes the budget
            (count, first, last), = self._rows(SIZE_SQL, {
                "run": run_id, "key": key, "cap": max_points + 1})
        if max_points is None or count <= max_points:
            rows = self._rows(
                "SELECT step, value, timestamp, is_nan FROM metrics "
                "WHERE run_uuid = ? AND key = ?", (run_id, key),
            )
        else:
            rows = self._rows(BUCKETS_SQL, {
                "n": bucket_count(max_points), "first": first, "span": last - first + 1,
                "run": run_id, "key": key,
            })
        points = [
            MetricPoint(int(step), float("nan") if is_nan else float(value), int(timestamp))
            for step, value, timestamp, is_nan in rows
        ]
        return sorted(points, key=lambda point: (point.step, point.timestamp_ms))


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _filter_sql(comparison: _search.Comparison) -> tuple[str, list[object]]:
    """One WHERE clause with MLflow's meaning, including its NaN rules for metrics."""
    op, value = comparison.op, comparison.value
    if comparison.entity == _search.ATTRIBUTE:
        if comparison.key == "run_name":  # MLflow compares the run-name tag, as here
            return (
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid "
                f"AND t.key = '{RUN_NAME_TAG}' AND t.value {op} ?)", [value],
            )
        column = _search.ATTRIBUTE_COLUMNS[comparison.key][0]
        return f"r.{column} {op} ?", [value]
    if comparison.entity == _search.METRIC:
        nan_rule = "OR m.is_nan = 1" if op == "!=" else "AND m.is_nan = 0"
        return (
            "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ? "
            f"AND (m.value {op} ? {nan_rule}))", [comparison.key, value],
        )
    table = "params" if comparison.entity == _search.PARAM else "tags"
    return (
        f"EXISTS (SELECT 1 FROM {table} p WHERE p.run_uuid = r.run_uuid AND p.key = ? "
        f"AND p.value {op} ?)", [comparison.key, value],
    )


def _order_sql(orders: list[_search.OrderBy]) -> tuple[list[str], list[str], list[object]]:
    """Joins, ORDER BY terms and join arguments, as MLflow orders: missing and NaN last."""
    joins: list[str] = []
    terms: list[str] = []
    args: list[object] = []
    for number, order in enumerate(orders):
        direction = "" if order.ascending else " DESC"
        if order.entity == _search.ATTRIBUTE:
            column = f"r.{_search.ATTRIBUTE_COLUMNS[order.key][0]}"
            terms += [f"CASE WHEN {column} IS NULL THEN 1 ELSE 0 END", column + direction]
            continue
        alias = f"o{number}"
        table = {"metric": "latest_metrics", "param": "params", "tag": "tags"}[order.entity]
        joins.append(
            f"LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = ?"
        )
        args.append(order.key)
        if order.entity == _search.METRIC:
            terms.append(
                f"CASE WHEN {alias}.is_nan = 1 THEN 1 WHEN {alias}.value IS NULL THEN 2 ELSE 0 END"
            )
        else:
            terms.append(f"CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END")
        terms.append(f"{alias}.value{direction}")
    by_start = [o for o in orders if o.entity == _search.ATTRIBUTE and o.key in ("start_time",
                                                                                "created")]
    if not by_start:
        terms.append("r.start_time DESC")
    terms.append("r.run_uuid")
    return joins, terms, args


def list_local_artifacts(artifact_uri: str | None) -> list[str] | None:
    """Files under a local artifact root, relative to it; None when the root is not local."""
    if not artifact_uri:
        return []
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        root = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and artifact_uri[1:2] == ":"):
        root = Path(artifact_uri)
    else:
        return None
    if not root.is_dir():
        return []
    files: list[str] = []
    for folder, _, names in os.walk(root):
        for name in names:
            files.append(str((Path(folder) / name).relative_to(root)))
            if len(files) >= ARTIFACT_LISTING_LIMIT:
                return sorted(files)
    return sorted(files)
