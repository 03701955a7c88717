"""`agentnn model …`: experiments, runs, the registry and loading."""

from __future__ import annotations

import typer

app = typer.Typer(help="List experiments, inspect and compare runs, register, promote, load.",
                  no_args_is_help=True)
