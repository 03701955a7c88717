"""trackio's local projects as :class:`~agentnn.mlflow_integration.importing.source.SourceRun`\\ s.

trackio keeps each project in one SQLite file, ``<TRACKIO_DIR>/<project>.db`` (``TRACKIO_DIR``
defaults to ``~/.cache/huggingface/trackio``). The path given is such a file, or a folder
holding them (every project in it is imported). What each part becomes:

- a run (``trackio.init(name=...)``) -> an MLflow run of the same name, ``source_id``
  ``<project>/<run id>`` (the run name when the file predates run ids), in the experiment named
  after the project's file (trackio's on-disk project name);
- its config -> params, nested dicts flattened to dotted keys, lists and other values as JSON;
  trackio's own entries become tags (``_Username`` -> ``trackio.username``, ``_Group`` ->
  ``trackio.group``) and its start time (``_Created``);
- every logged number -> a metric point with its step and the log's timestamp (ms); NaN and
  ±inf as trackio stores them (``"NaN"``, ``"Infinity"``); booleans as 0/1;
- what is not one number (images, tables, histograms, text) and trackio's system metrics are
  not imported: one line per key says how many values were left out.

trackio records no run status: an imported run is FINISHED, ended at its last log.

Why the sqlite3 module and not trackio's ``SQLiteStorage``: that class reads only the projects
under the ``TRACKIO_DIR`` fixed when trackio is imported, and cannot be pointed at a file. The
SQLite tables are trackio's format itself (``metrics``: one row per ``log()`` with its metrics
as JSON; ``configs``: one row per run), read here with plain SELECTs, so importing needs no
trackio installed.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentnn.errors import DataError
from agentnn.mlflow_integration.importing.source import MetricSeries, SourceRun
from agentnn.mlflow_integration.run.validation import flatten

KIND = "trackio"
DB_SUFFIX = ".db"
REGISTRY_PREFIX = "registry-"  # trackio's model registries, not projects
REQUIRED_TABLES = frozenset({"metrics", "configs"})
SPECIAL_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# trackio's own config entries: the tag each becomes ("_Created" is the start time)
CONFIG_TAGS = {"_Username": "trackio.username", "_Group": "trackio.group"}
CREATED = "_Created"


class TrackioReader:
    """Finds and reads trackio projects (see the module docstring)."""

    kind = KIND

    def detect(self, path: Path) -> bool:
        """True for a trackio project file, or a folder directly holding one."""
        if path.is_file():
            return is_project(path)
        return path.is_dir() and any(is_project(p) for p in _db_files(path))

    def runs(self, path: Path, experiment: str | None) -> Iterator[SourceRun]:
        """Every run of every project at ``path``, project by project, oldest run first."""
        projects = [path] if path.is_file() else [p for p in _db_files(path) if is_project(p)]
        if not projects:
            raise DataError(f"{path}: no trackio project files (<project>.db) in it", str(path))
        for project in projects:
            yield from read_project(project, experiment)


def is_project(path: Path) -> bool:
    """A SQLite file with trackio's ``metrics`` and ``configs`` tables."""
    if path.suffix != DB_SUFFIX or path.name.startswith(REGISTRY_PREFIX):
        return False
    try:
        with _connect(path) as connection:
            return REQUIRED_TABLES <= _tables(connection)
    except sqlite3.Error:
        return False


def read_project(path: Path, experiment: str | None) -> Iterator[SourceRun]:
    """Each run of one project file, read whole."""
    project = path.stem
    try:
        with _connect(path) as connection:
            runs = _read_configs(connection, project, experiment or project)
            _read_metrics(connection, runs, project, experiment or project)
            system = _count_system_metrics(connection)
    except sqlite3.Error as error:
        raise DataError(f"{path}: not a readable trackio project ({error})", str(path)) from None
    for identity in sorted(runs, key=lambda key: (runs[key].start_time_ms or 0, key)):
        run = runs[identity]
        if system.get(identity):
            run.skipped.append(f"{system[identity]} system metric log(s) not imported")
        _finish(run)
        yield run


# --- the tables ----------------------------------------------------------------------------


def _read_configs(connection: sqlite3.Connection, project: str,
                  experiment: str) -> dict[str, SourceRun]:
    runs: dict[str, SourceRun] = {}
    has_ids = "run_id" in _columns(connection, "configs")
    query = ("SELECT run_id, run_name, config, created_at FROM configs ORDER BY id" if has_ids
             else "SELECT run_name, run_name, config, created_at FROM configs ORDER BY id")
    for run_id, run_name, config, created_at in connection.execute(query):
        run = _run(runs, project, experiment, run_id or run_name, run_name)
        try:
            values = json.loads(config) if config else {}
        except ValueError:
            run.skipped.append("the run's config is not JSON; no params imported")
            continue
        if not isinstance(values, dict):
            continue
        created = values.pop(CREATED, None) or created_at
        if isinstance(created, str):
            run.start_time_ms = _time_ms(created)
        for key, tag in CONFIG_TAGS.items():
            value = values.pop(key, None)
            if value not in (None, ""):
                run.tags[tag] = str(value)
        for key, value in flatten(values).items():
            run.params[key] = value if isinstance(value, str) else json.dumps(value)
    return runs


def _read_metrics(connection: sqlite3.Connection, runs: dict[str, SourceRun], project: str,
                  experiment: str) -> None:
    has_ids = "run_id" in _columns(connection, "metrics")
    identity = "run_id" if has_ids else "run_name"
    query = (f"SELECT {identity}, run_name, step, timestamp, metrics FROM metrics "
             "ORDER BY id")
    times: dict[str, int] = {}  # trackio stamps each batch of logs with one timestamp
    left_out: dict[str, Counter[str]] = {}
    for run_id, run_name, step, stamp, payload in connection.execute(query):
        run = _run(runs, project, experiment, run_id or run_name, run_name)
        timestamp_ms = times.get(stamp)
        if timestamp_ms is None:
            timestamp_ms = times[stamp] = _time_ms(stamp)
        try:
            values = json.loads(payload)
        except ValueError:
            run.skipped.append(f"a log at step {step} is not JSON; skipped")
            continue
        for key, value in values.items():
            number = _number(value)
            if number is None:
                left_out.setdefault(run.source_id, Counter())[key] += 1
                continue
            series = run.metrics.get(key)
            if series is None:
                series = run.metrics[key] = MetricSeries(key)
            series.steps.append(int(step))
            series.timestamps_ms.append(timestamp_ms)
            series.values.append(number)
    for run in runs.values():
        for key, count in sorted(left_out.get(run.source_id, Counter()).items()):
            run.skipped.append(f"metric {key!r}: {count} value(s) that are not one number "
                               "(media, tables, text) not imported")


def _count_system_metrics(connection: sqlite3.Connection) -> dict[str, int]:
    columns = _columns(connection, "system_metrics")
    if not columns:
        return {}
    identity = "run_id" if "run_id" in columns else "run_name"
    query = f"SELECT {identity}, COUNT(*) FROM system_metrics GROUP BY {identity}"
    return {str(run): int(count) for run, count in connection.execute(query)}


# --- small helpers -------------------------------------------------------------------------


def _run(runs: dict[str, SourceRun], project: str, experiment: str, identity: str,
         name: str) -> SourceRun:
    run = runs.get(identity)
    if run is None:
        run = runs[identity] = SourceRun(kind=KIND, source_id=f"{project}/{identity}",
                                         experiment=experiment, run_name=name)
    return run


def _finish(run: SourceRun) -> None:
    """Start and end times from the logs where the config has none."""
    stamps = [t for series in run.metrics.values() if len(series)
              for t in (min(series.timestamps_ms), max(series.timestamps_ms))]
    if stamps:
        if run.start_time_ms is None:
            run.start_time_ms = min(stamps)
        run.end_time_ms = max([*stamps, run.start_time_ms])
    elif run.start_time_ms is not None:
        run.end_time_ms = run.start_time_ms


def _number(value: Any) -> float | None:
    """A logged value as a metric value, or None when it is not one number."""
    if type(value) is float:
        return value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        return SPECIAL_NUMBERS.get(value)
    return None


def _time_ms(stamp: str) -> int:
    """trackio's ISO 8601 time (UTC, with offset) in ms since the epoch."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:  # older files wrote UTC without the offset
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))


def _db_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{DB_SUFFIX}") if p.is_file())


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that only reads (trackio keeps its files in WAL mode, whose readers need
    the file's shared memory, so a read-only open of the file itself can fail)."""
    connection = sqlite3.connect(str(path), timeout=30)
    try:
        connection.execute("PRAGMA query_only = ON")
        yield connection
    finally:
        connection.close()


def _tables(connection: sqlite3.Connection) -> set[str]:
    return {str(row[0]) for row in
            connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})")}
