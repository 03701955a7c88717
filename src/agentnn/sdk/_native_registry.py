"""Registering a run's model straight into a SQLite store, without importing MLflow.

``agentnn model register`` through ``MlflowClient`` spends seconds importing MLflow and opening
its SQLAlchemy store, against a few milliseconds of SQL, while the reads skip both
(:mod:`agentnn.sdk._sqlite_reader`). Here the rows MLflow's SQL registry writes for
``create_registered_model``, ``create_model_version`` and ``set_registered_model_alias`` are
written with the standard library, in one transaction that holds SQLite's write lock, so the
next version number is taken safely next to any other writer. ``agentnn model alias`` moves and
removes an alias the same way (``set_registered_model_alias``, ``delete_registered_model_alias``).

Fenced like the reader: only at the schema revisions it was compared against
(tests/sdk/test_sdk_native_register.py and test_sdk_native_alias.py compare the rows with
MLflow's own, column by column),
only in the workspace MLflow itself uses, only for names and aliases any MLflow accepts, and
only for a model the run logged as an MLflow 3 LoggedModel. Anything else raises
:class:`Unsupported`, and the caller registers through MLflow.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from urllib.parse import quote

from agentnn.errors import InputError, NotFoundError, RunHasNoModelError
from agentnn.sdk._records import ModelVersionInfo
from agentnn.sdk._sqlite_reader import (
    DELETED_VERSION_STAGE,
    MODEL_ID_TAG,
    SqliteReader,
    Unsupported,
)

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,249}$")  # what any MLflow takes
SAFE_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,254}$")
VERSION_ALIAS = re.compile(r"^[vV]\d+$")  # reserved by MLflow, as is "latest"
STAGE_NONE = "None"  # MLflow's current_stage of a version outside the deprecated stages
READY = "READY"
LOCK_TIMEOUT_S = 30.0


def register(reader: SqliteReader, run_id: str, name: str, alias: str | None) -> ModelVersionInfo:
    """Register the newest LoggedModel of ``run_id`` as a new version of ``name``.

    Raises:
        NotFoundError: the run does not exist.
        RunHasNoModelError: the run logged no model (nor an ``MLmodel`` folder MLflow would find).
        Unsupported: outside what this path was tested for; register through MLflow.
    """
    if not SAFE_NAME.match(name) or name != name.strip():
        raise Unsupported(f"model name {name!r}: left to MLflow's own checks")
    if alias is not None and (not SAFE_ALIAS.match(alias) or alias.lower() == "latest"
                              or VERSION_ALIAS.match(alias)):
        raise Unsupported(f"alias {alias!r}: left to MLflow's own checks")
    workspace = reader.store_workspace()  # also checks the schema revision
    reader.get_run(run_id)  # NotFoundError for an unknown run
    model_id, source = _newest_logged_model(reader, run_id)
    now = int(time.time() * 1000)
    connection = sqlite3.connect(f"file:{quote(str(reader.path.resolve()))}?mode=rw", uri=True,
                                 timeout=LOCK_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")  # the write lock: the version number is ours
        version = _insert_version(connection, workspace, name, run_id, source, model_id, now)
        if alias is not None:
            _set_alias(connection, workspace, name, alias, version)
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise Unsupported(f"native registration: {error}") from error
    finally:
        connection.close()
    (info,) = [v for v in reader.list_versions(name) if v.version == version]
    return info


def set_alias(reader: SqliteReader, name: str, alias: str, version: int) -> ModelVersionInfo:
    """Point ``name@alias`` at ``version``, as :func:`agentnn.sdk._registry.set_alias` does.

    Raises:
        InputError: a reserved or ambiguous alias (a number, ``latest``, blank).
        NotFoundError: no such registered model, or no such version of it.
        Unsupported: outside what this path was tested for; set it through MLflow.
    """
    if alias.isdigit() or alias.lower() == "latest" or not alias.strip():
        raise InputError(f"alias {alias!r} is reserved or ambiguous; use a name like 'champion'")
    _check_names(name, alias)
    workspace = reader.store_workspace()  # also checks the schema revision
    clause, args = _where_workspace(workspace)

    def change(connection: sqlite3.Connection) -> None:
        _require_model(connection, clause, args, name)
        found = connection.execute(
            "SELECT 1 FROM model_versions WHERE name = ? AND version = ? AND "
            "(current_stage IS NULL OR current_stage != ?)" + clause,
            (name, version, DELETED_VERSION_STAGE, *args)).fetchone()
        if found is None:
            raise NotFoundError("model version", f"{name}/{version}",
                                f"see: agentnn model versions {name}")
        _set_alias(connection, workspace, name, alias, version)

    _write(reader, change)
    (info,) = [v for v in reader.list_versions(name) if v.version == version]
    return info


def delete_alias(reader: SqliteReader, name: str, alias: str) -> None:
    """Remove ``name@alias``, as :func:`agentnn.sdk._registry.delete_alias` does.

    Raises:
        NotFoundError: no such registered model, or it has no such alias.
        Unsupported: outside what this path was tested for; remove it through MLflow.
    """
    _check_names(name, alias)
    clause, args = _where_workspace(reader.store_workspace())

    def change(connection: sqlite3.Connection) -> None:
        _require_model(connection, clause, args, name)
        gone = connection.execute(
            "DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?" + clause,
            (name, alias, *args))
        if gone.rowcount == 0:
            raise NotFoundError("alias", f"{name}@{alias}")

    _write(reader, change)


def _check_names(name: str, alias: str) -> None:
    """Names and aliases any MLflow accepts; the rest is left to MLflow's own checks."""
    if not SAFE_NAME.match(name) or name != name.strip():
        raise Unsupported(f"model name {name!r}: left to MLflow's own checks")
    if not SAFE_ALIAS.match(alias) or VERSION_ALIAS.match(alias):
        raise Unsupported(f"alias {alias!r}: left to MLflow's own checks")


def _require_model(connection: sqlite3.Connection, clause: str, args: tuple[str, ...],
                   name: str) -> None:
    if connection.execute("SELECT 1 FROM registered_models WHERE name = ?" + clause,
                          (name, *args)).fetchone() is None:
        raise NotFoundError("registered model", name,
                            "list versions of a known name or register one first")


def _write(reader: SqliteReader, change: Callable[[sqlite3.Connection], None]) -> None:
    """Run ``change`` in one transaction holding SQLite's write lock; rolled back when it
    raises (a NotFoundError changes nothing)."""
    connection = sqlite3.connect(f"file:{quote(str(reader.path.resolve()))}?mode=rw", uri=True,
                                 timeout=LOCK_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        change(connection)
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        raise Unsupported(f"native registry write: {error}") from error
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()


def _newest_logged_model(reader: SqliteReader, run_id: str) -> tuple[str, str]:
    """(model id, artifact location) of the run's newest active LoggedModel, as
    :func:`agentnn.sdk._registry.find_model_source` picks it."""
    rows = reader.rows(
        "SELECT model_id, artifact_location FROM logged_models WHERE source_run_id = ? AND "
        "(lifecycle_stage IS NULL OR lifecycle_stage = 'active') "
        "ORDER BY creation_timestamp_ms", (run_id,),
    )
    if rows:
        model_id, location = rows[-1]
        return str(model_id), str(location)
    artifacts = reader.run_detail(run_id).artifacts
    if any(path == "MLmodel" or path.endswith("/MLmodel") for path in artifacts):
        raise Unsupported("an MLmodel folder among the run's artifacts: MLflow resolves it")
    raise RunHasNoModelError(run_id)


def _where_workspace(workspace: str | None) -> tuple[str, tuple[str, ...]]:
    return (" AND workspace = ?", (workspace,)) if workspace is not None else ("", ())


def _insert_version(connection: sqlite3.Connection, workspace: str | None, name: str,
                    run_id: str, source: str, model_id: str, now: int) -> int:
    """The rows of ``create_registered_model`` (when new) and ``create_model_version``."""
    clause, args = _where_workspace(workspace)
    extra_column = ", workspace" if workspace is not None else ""
    extra_mark = ", ?" if workspace is not None else ""
    exists = connection.execute(
        "SELECT 1 FROM registered_models WHERE name = ?" + clause, (name, *args)).fetchone()
    if exists is None:
        connection.execute(
            f"INSERT INTO registered_models (name, creation_time, last_updated_time, "
            f"description{extra_column}) VALUES (?, ?, ?, NULL{extra_mark})",
            (name, now, now, *args))
    else:
        connection.execute(
            "UPDATE registered_models SET last_updated_time = ? WHERE name = ?" + clause,
            (now, name, *args))
    (latest,) = connection.execute(
        "SELECT MAX(version) FROM model_versions WHERE name = ?" + clause, (name, *args)
    ).fetchone()
    version = int(latest or 0) + 1
    connection.execute(
        f"INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
        f"description, user_id, current_stage, source, run_id, status, status_message, "
        f"run_link, storage_location{extra_column}) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, "
        f"NULL, NULL, ?{extra_mark})",
        (name, version, now, now, STAGE_NONE, source, run_id, READY, source, *args))
    connection.execute(
        f"INSERT INTO model_version_tags (key, value, name, version{extra_column}) "
        f"VALUES (?, ?, ?, ?{extra_mark})", (MODEL_ID_TAG, model_id, name, version, *args))
    return version


def _set_alias(connection: sqlite3.Connection, workspace: str | None, name: str, alias: str,
               version: int) -> None:
    """The row of ``set_registered_model_alias``: the alias points at ``version`` now."""
    clause, args = _where_workspace(workspace)
    extra_column = ", workspace" if workspace is not None else ""
    extra_mark = ", ?" if workspace is not None else ""
    connection.execute(
        "DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?" + clause,
        (name, alias, *args))
    connection.execute(
        f"INSERT INTO registered_model_aliases (alias, version, name{extra_column}) "
        f"VALUES (?, ?, ?{extra_mark})", (alias, version, name, *args))

