"""Fixtures for the import tests: the command run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cli(workdir: Path):
    """Run ``agentnn`` in-process; returns the click Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from agentnn.cli.main import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})

    return run
