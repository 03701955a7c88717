"""A SQLite store is created (and the embedded one upgraded) once, under a file lock.

MLflow creates a SQLite store's tables on first use, through alembic migrations. Eight processes
doing that at once on a fresh folder collide: all of them fail, and the half-made store breaks
the next process too. So before any process of agentnn opens a SQLite store, it takes
``<db>.lock`` (``filelock``), lets MLflow create the store if it is not there, and only then
goes on; the others wait for the lock and find the store made.

The embedded default (``./mlruns/mlflow.db``) is agentnn's own, so an out-of-date schema there is
upgraded in the same locked step (``mlflow db upgrade``). A store the user pointed at is not
changed: MLflow's own message asks for the upgrade.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

LOCK_TIMEOUT = 600.0  # seconds to wait for another process creating or upgrading the store
UPGRADE_TIMEOUT = 600.0  # seconds `mlflow db upgrade` may take on a large store
LOCK_SUFFIX = ".lock"
MLFLOW_SCHEMA_LOGGER = "mlflow.store.db.utils"  # says at INFO that it creates the tables

_ready: set[str] = set()
_ready_lock = threading.Lock()


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for other stores and in-memory ones."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///"):].split("?")[0])
    return Path(path) if path and path != ":memory:" else None


def ensure_sqlite_store(uri: str, *, upgrade: bool = False) -> None:
    """Make sure the SQLite store at ``uri`` exists (created under its lock); once per process.

    Args:
        uri: any tracking URI; only ``sqlite:///`` files are handled, others return at once.
        upgrade: also upgrade an out-of-date schema (the embedded default only).
    """
    path = sqlite_file(uri)
    if path is None:
        return
    with _ready_lock:
        if uri in _ready:
            return
        from filelock import FileLock
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from agentnn.mlflow_integration.store.classify import is_outdated_schema

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + LOCK_SUFFIX, timeout=LOCK_TIMEOUT), _quiet_schema_lines():
            try:
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
            except MlflowException as error:
                if not (upgrade and is_outdated_schema(error)):
                    raise
                _upgrade(uri)
        _ready.add(uri)


@contextlib.contextmanager
def _quiet_schema_lines() -> Iterator[None]:
    """Keep MLflow's "Creating initial MLflow database tables..." lines off the terminal: the
    store is made by agentnn on the way to a run (after a fallback, too), not asked for."""
    schema_logger = logging.getLogger(MLFLOW_SCHEMA_LOGGER)
    level = schema_logger.level
    schema_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        schema_logger.setLevel(level)


def _upgrade(uri: str) -> None:
    """Run MLflow's own schema upgrade on the store (under the caller's lock)."""
    subprocess.run(
        [sys.executable, "-m", "mlflow", "db", "upgrade", uri],
        check=True, capture_output=True, timeout=UPGRADE_TIMEOUT,
    )
