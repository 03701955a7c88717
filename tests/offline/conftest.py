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
def cli(workdir: Path):
    """Run ``agentnn`` in-process; returns the click Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from agentnn.cli.main import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})

    return run


@pytest.fixture
def dead_server(monkeypatch: pytest.MonkeyPatch, workdir: Path, server_control) -> str:
    """``MLFLOW_TRACKING_URI`` set to a loopback port nothing listens on; returns the URI."""
    free_port = server_control[2]
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
