"""Move a legacy MLflow file store into the SQLite store with MLflow's own migration.

MLflow 3 no longer opens the old file store (``mlruns/<experiment id>/meta.yaml``). Its
``mlflow.store.fs2db.migrate`` copies experiments, runs, params, every metric point, tags,
logged models and the registry into an empty SQLite database; artifacts stay where they are
and the migrated runs keep pointing at them. This module checks the inputs, runs it, counts
what landed, and, when the database lives inside the migrated folder itself (the embedded
``./mlruns``), renames each experiment's ``meta.yaml`` to ``meta.yaml.migrated`` so the folder
no longer reads as a file store. Nothing is deleted.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
from pathlib import Path

from agentnn import config
from agentnn.errors import MigrationError
from agentnn.sdk._records import MigrationReport
from agentnn.sdk._sqlite_reader import list_local_artifacts, sqlite_path

MIGRATED_SUFFIX = ".migrated"
# what the report counts: label -> table of the SQLite store
COUNTED_TABLES = {
    "experiments": "experiments",
    "runs": "runs",
    "params": "params",
    "tags": "tags",
    "metric_points": "metrics",
    "logged_models": "logged_models",
    "registered_models": "registered_models",
    "model_versions": "model_versions",
}


def migrate_file_store(source: Path, target_uri: str) -> MigrationReport:
    """Migrate ``source`` into the SQLite store ``target_uri`` and report what moved."""
    source = source.expanduser().resolve()
    db_path = sqlite_path(target_uri)
    if db_path is None:
        raise MigrationError(
            str(source), f"the target {config.mask_uri(target_uri)} is not a SQLite file; "
            "migrate writes into the embedded store (unset MLFLOW_TRACKING_URI) "
            "or a sqlite:/// URI",
        )
    if not source.is_dir():
        raise MigrationError(str(source), "no such folder")
    if not config.is_legacy_file_store(source):
        raise MigrationError(
            str(source), "not an MLflow file store (no <experiment id>/meta.yaml inside)"
        )
    db_path = db_path.resolve()
    existed = db_path.exists()
    if existed and _count_rows(db_path).get("runs", 0) + _count_rows(db_path).get(
            "experiments", 0) > 0:
        raise MigrationError(
            str(source), f"the target {db_path} already holds experiments or runs; "
            "migrate into an empty store (a new sqlite:/// path) and nothing is overwritten",
        )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    _run_mlflow_migration(source, f"sqlite:///{db_path}", db_path, existed)
    counts = _count_rows(db_path)
    artifact_files = _count_artifact_files(db_path)
    renamed = _retire_metadata(source) if db_path.parent == source else []
    return MigrationReport(
        source=str(source),
        target_uri=f"sqlite:///{db_path}",
        counts=counts,
        artifact_files=artifact_files,
        renamed_metadata=renamed,
    )


def _run_mlflow_migration(source: Path, target: str, db_path: Path, existed: bool) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.store.fs2db import migrate

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            migrate(source, target, progress=False)
    except (MlflowException, OSError, ValueError, KeyError) as error:
        if not existed:  # leave no half-made database behind, so a second try starts clean
            for leftover in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
                leftover.unlink(missing_ok=True)
        message = str(getattr(error, "message", error)).splitlines()[0]
        raise MigrationError(str(source), message) from None


def _count_rows(db_path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not db_path.exists():
        return counts
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        for label, table in COUNTED_TABLES.items():
            try:
                counts[label] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            except sqlite3.Error:
                continue
    return counts


def _count_artifact_files(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        uris = [row[0] for row in db.execute("SELECT artifact_uri FROM runs")]
    return sum(len(list_local_artifacts(uri) or []) for uri in uris)


def _retire_metadata(source: Path) -> list[str]:
    """Rename ``<experiment>/meta.yaml`` so the folder is no longer taken for a file store."""
    renamed = []
    for meta in sorted(source.glob("*/meta.yaml")):
        target = meta.with_name(meta.name + MIGRATED_SUFFIX)
        meta.rename(target)
        renamed.append(str(target))
    return renamed
