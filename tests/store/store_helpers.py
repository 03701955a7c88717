"""Helpers for the store layer tests: the CLI in a real subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI_TIMEOUT = 180.0  # seconds; a guard against hangs, not a timing assertion

PASSWORD = "s3cr3t-P4ss"  # the secret every masking test looks for in the output


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without MLflow/agentnn settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``agentnn <args>`` in a subprocess; the guard fails the test instead of hanging it."""
    return subprocess.run(
        [sys.executable, "-m", "agentnn", *args], cwd=cwd, env=clean_env(**env),
        capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``error:`` lines of stderr (MLflow's own warnings may precede them)."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]
