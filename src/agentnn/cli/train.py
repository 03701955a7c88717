"""`agentnn train <trainer>`: run one of the five trainers with tracking."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train one of the five networks; every run is tracked.",
                  no_args_is_help=True)
