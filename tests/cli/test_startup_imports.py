"""`agentnn --help` stays fast: no command's help imports MLflow or PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from agentnn.cli.main import app

PROBE = """
import json, sys
from agentnn.cli.main import app
try:
    app({args!r})
except SystemExit:
    pass
print(json.dumps(sorted(m for m in ("mlflow", "torch", "matplotlib", "sklearn")
                        if m in sys.modules)))
"""


def command_paths() -> list[list[str]]:
    """Every command and sub-command of `agentnn`, as argument lists."""
    paths: list[list[str]] = [[]]

    def walk(command: typer.core.TyperCommand, prefix: list[str]) -> None:
        if isinstance(command, typer.core.TyperGroup):
            context = typer.Context(command)
            for name in command.list_commands(context):
                paths.append([*prefix, name])
                walk(command.get_command(context, name), [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_every_command_is_listed():
    names = {" ".join(path) for path in command_paths()}
    assert {"quickstart", "config", "model", "model sync", "train", "data"} <= names


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "agentnn")
def test_help_imports_neither_mlflow_nor_torch(path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=[*path, "--help"])],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    *_, modules_line = result.stdout.strip().splitlines()
    assert json.loads(modules_line) == []
    assert "Usage" in result.stdout
