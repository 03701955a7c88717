"""`agentnn config`: the resolved settings and where each came from; `--check` asks the store.

Plain ``agentnn config`` imports neither MLflow nor the store layer, so it answers at once;
``--check`` probes the store (see :meth:`agentnn.mlflow_integration.store.client.Store.probe`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agentnn.cli import console

CHECK_TITLE = "tracking store"
UNKNOWN = "-"  # a fact the probe could not learn (for example behind a refused login)


def show_config(
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="table|json", help="table or json.")
    ] = "table",
    check: Annotated[
        bool, typer.Option("--check", help="Connect to the store and report: reachable, "
                           "server version, backend, auth on, credentials pass, artifacts "
                           "proxied. Exit 1 when it does not answer or refuses the credentials.")
    ] = False,
) -> None:
    """Show the resolved settings (tracking URI, journal, timeouts) and where each came from."""
    from agentnn import config

    if output not in ("table", "json"):
        raise typer.BadParameter("choose table or json", param_hint="--output")
    settings = config.resolve()
    rows = settings.as_rows()
    health = _probe(settings) if check else None
    if output == "json":
        data: dict[str, Any] = {name: {"value": value, "source": source}
                                for name, value, source in rows}
        if health is not None:
            data["check"] = health.to_dict()
        print(console.to_json(data))
    else:
        console.print_table("agentnn settings", ["setting", "value", "source"], rows)
        if health is not None:
            console.print_table(CHECK_TITLE, ["check", "result"], _check_rows(health))
    config.check_tracking_uri(settings.tracking_uri)
    if health is not None and health.problem is not None:
        raise health.problem


def _probe(settings: Any) -> Any:
    from agentnn.mlflow_integration.store.client import Store

    store = Store.from_settings(settings)
    store.validate()  # a malformed URI is refused before anything is asked
    return store.probe()


def _check_rows(health: Any) -> list[tuple[str, str]]:
    def shown(value: object) -> str:
        if value is None:
            return UNKNOWN
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    rows = [
        ("store", health.uri),
        ("kind", health.kind),
        ("reachable", shown(health.reachable)),
        ("server version", shown(health.server_version)),
        ("backend", shown(health.backend)),
        ("auth on", shown(health.auth_enabled)),
        ("credentials pass", shown(health.credentials_ok)),
        ("artifacts proxied", shown(health.artifacts_proxied)),
    ]
    if health.detail:
        rows.append(("detail", health.detail))
    return rows
