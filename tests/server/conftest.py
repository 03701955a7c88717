"""The agentnn app for `mlflow server` for real: PostgreSQL, basic auth, the app's routes.

The PostgreSQL cluster, the stock servers and their fixtures are tests/team's (loaded from its
conftest, so both folders start them the same way; run on their own, each folder starts one
cluster). Added here: one `mlflow server --app-name agentnn` with basic auth, started once per
session and stopped by its own process id, with users alice (creates and logs) and rita (READ).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TEAM = Path(__file__).parents[1] / "team"
sys.path.insert(0, str(TEAM))  # team_servers, team_helpers

import team_servers as ts  # noqa: E402


def _team_conftest():
    spec = importlib.util.spec_from_file_location("team_conftest", TEAM / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_team = _team_conftest()
AuthServer = _team.AuthServer
postgres = _team.postgres
plain_server = _team.plain_server
auth_server = _team.auth_server
team = _team.team
trained = _team.trained


@pytest.fixture(scope="session")
def agentnn_server(postgres: ts.Postgres) -> Iterator[AuthServer]:
    """`mlflow server --app-name agentnn` with basic auth (deploy/basic_auth.ini as shipped),
    on databases of its own; users alice (may create experiments) and rita (READ only)."""
    postgres.create_database("agentnn_tracking")
    postgres.create_database("agentnn_users")
    process, url = ts.start_mlflow_server(
        postgres.root.parent / "agentnn-server", postgres.url_for_pgpassword("agentnn_tracking"),
        auth_database_uri=postgres.url_for_pgpassword("agentnn_users"),
        pg_password=ts.PG_PASSWORD, app_name="agentnn",
    )
    try:
        server = AuthServer(url)
        server.create_user(ts.ALICE, ts.ALICE_PASSWORD)
        server.create_user(ts.RITA, ts.RITA_PASSWORD)
        yield server
    finally:
        ts.stop_process_group(process)
