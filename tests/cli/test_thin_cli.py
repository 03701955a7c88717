"""The command layer stays thin: the `model` commands print only through `agentnn.cli.console`.

That no command reaches into the SDK's private modules is an import contract (pyproject.toml,
``private-modules``), checked by tests/test_import_contracts.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agentnn.cli

CLI = Path(agentnn.cli.__file__).parent
RENDERED_THROUGH_CONSOLE = ["model.py", "main.py"]


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("name", RENDERED_THROUGH_CONSOLE)
def test_model_commands_print_only_through_the_console(name):
    path = CLI / name
    tree = ast.parse(path.read_text())
    prints = [node.lineno for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "print"]
    assert prints == []
    assert not [module for module in imported_modules(path) if module.split(".")[0] == "rich"]


def test_sync_is_a_model_command():
    import typer

    from agentnn.cli.main import app

    group = typer.main.get_command(app)
    model = group.get_command(typer.Context(group), "model")
    assert "sync" in model.list_commands(typer.Context(model))
    assert "sync" not in group.list_commands(typer.Context(group))
