"""Fixtures for the offline tests: a second store to push to, and a server address that is down."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def second_store(workdir: Path, template_store: Path) -> str:
    """Another fresh SQLite store, as the target of a push."""
    path = workdir / "target.db"
    shutil.copyfile(template_store, path)
    return f"sqlite:///{path}"



@pytest.fixture
def dead_server(monkeypatch: pytest.MonkeyPatch, workdir: Path, server_control) -> str:
    """``MLFLOW_TRACKING_URI`` set to a loopback port nothing listens on; returns the URI."""
    free_port = server_control[2]
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


SERVER_START_ATTEMPTS = 3  # a loaded machine can take longer than one start's timeout


@pytest.fixture
def start_server(workdir: Path, template_store: Path, server_control):
    """``start(port)``: a real `mlflow server` on ``port`` whose store is ``workdir/server``;
    ``start(port, admin_password)`` runs MLflow's basic-auth app there (user ``admin``).

    The store is a copy of the session's empty schema (no migrations at start), and the start
    is retried on the same port, so a busy machine does not fail the test.
    """
    start, _, _ = server_control
    root = workdir / "server"
    root.mkdir(exist_ok=True)
    if not (root / "server.db").exists():
        shutil.copyfile(template_store, root / "server.db")

    def start_on(port: int, admin_password: str | None = None):
        for attempt in range(SERVER_START_ATTEMPTS):
            try:
                return start(root, port, admin_password)
            except RuntimeError:
                if attempt == SERVER_START_ATTEMPTS - 1:
                    raise

    return start_on
