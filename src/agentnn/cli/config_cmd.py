"""`agentnn config`: the resolved settings and where each came from."""

from __future__ import annotations

from typing import Annotated

import typer

from agentnn.cli import console


def show_config(
    output: Annotated[
        str, typer.Option("--output", "-o", help="table or json.")
    ] = "table",
) -> None:
    """Show the resolved settings (tracking URI, journal, timeouts) and where each came from."""
    from agentnn import config

    settings = config.resolve()
    rows = settings.as_rows()
    if output == "json":
        print(console.to_json({name: {"value": value, "source": source}
                               for name, value, source in rows}))
        return
    if output != "table":
        raise typer.BadParameter("choose table or json", param_hint="--output")
    console.print_table("agentnn settings", ["setting", "value", "source"], rows)
    config.check_tracking_uri(settings.tracking_uri)
