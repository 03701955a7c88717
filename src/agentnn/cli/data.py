"""`agentnn data …`: synthetic interaction logs and data checks."""

from __future__ import annotations

import typer

app = typer.Typer(help="Make and check interaction-log data.", no_args_is_help=True)
