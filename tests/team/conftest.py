"""The team path for real: PostgreSQL, `mlflow server` on it, and the same with basic auth.

One PostgreSQL cluster, one plain server and one auth server serve the whole session; each is
started once and stopped by its own process id. The tests skip only when the PostgreSQL server
binaries are not installed.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import team_servers as ts
from team_helpers import Team, run_id_of

# --- servers (one each per session) --------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[ts.Postgres]:
    bin_dir = ts.postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                    f"in any of {', '.join(ts.PG_VERSION_DIRS)}")
    cluster = ts.start_postgres(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def plain_server(postgres: ts.Postgres) -> Iterator[str]:
    """`mlflow server` on PostgreSQL without auth; yields its URL."""
    process, url = ts.start_mlflow_server(
        postgres.root.parent / "plain-server", postgres.create_database("mlflow_plain")
    )
    try:
        yield url
    finally:
        ts.stop_process_group(process)


@dataclass
class AuthServer:
    """The basic-auth server: its URL and the admin's REST calls the tests need."""

    url: str
    experiment_ids: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def as_user(self, user: str, password: str) -> str:
        return ts.with_credentials(self.url, user, password)

    def admin_request(self, path: str, payload: dict[str, object]) -> dict[str, object]:
        token = base64.b64encode(f"{ts.ADMIN_USER}:{ts.ADMIN_PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            self.url + path, data=json.dumps(payload).encode(), method="POST",
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def create_user(self, user: str, password: str) -> None:
        self.admin_request("/api/2.0/mlflow/users/create",
                           {"username": user, "password": password})

    def grant(self, user: str, experiment_id: str, permission: str) -> None:
        """Give ``user`` a permission on one experiment (READ, EDIT, MANAGE) it has none on yet."""
        self.admin_request("/api/3.0/mlflow/users/permissions/grant", {
            "username": user, "resource_type": "experiment", "resource_id": experiment_id,
            "permission": permission,
        })

    def revoke(self, user: str, experiment_id: str) -> None:
        """Drop ``user``'s own permission on one experiment: the default (READ) applies again."""
        self.admin_request("/api/3.0/mlflow/users/permissions/revoke", {
            "username": user, "resource_type": "experiment", "resource_id": experiment_id,
        })

    def admin_client(self):  # -> mlflow.MlflowClient
        """An MLflow client that sees everything, for checking what arrived."""
        import mlflow

        return mlflow.MlflowClient(self.as_user(ts.ADMIN_USER, ts.ADMIN_PASSWORD))


@pytest.fixture(scope="session")
def auth_server(postgres: ts.Postgres) -> Iterator[AuthServer]:
    """`mlflow server --app-name basic-auth` on its own databases, users alice (may log) and
    rita (READ only); alice owns the experiments the trainers and the READ tests use."""
    postgres.create_database("mlflow_tracking")
    postgres.create_database("mlflow_users")
    process, url = ts.start_mlflow_server(
        postgres.root.parent / "auth-server", postgres.url_for_pgpassword("mlflow_tracking"),
        auth_database_uri=postgres.url_for_pgpassword("mlflow_users"),
        pg_password=ts.PG_PASSWORD,
    )
    try:
        server = AuthServer(url)
        server.create_user(ts.ALICE, ts.ALICE_PASSWORD)
        server.create_user(ts.RITA, ts.RITA_PASSWORD)
        yield server
    finally:
        ts.stop_process_group(process)


@pytest.fixture
def team(workdir: Path) -> Team:
    """A fresh working directory with its own journal folder; no tracking settings inherited."""
    return Team(workdir)


@pytest.fixture(scope="session")
def trained(auth_server: AuthServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two `advanced` runs alice trained on the auth server, the first registered as
    ``team-router`` version 1; returns their run ids."""
    team = Team(tmp_path_factory.mktemp("trained"))
    env = team.credentials("env", auth_server.url, ts.ALICE, ts.ALICE_PASSWORD)
    runs = {}
    for seed, extra in (("1", ("--register-as", "team-router")), ("2", ())):
        result = team.run("train", "advanced", "--dataset", "synthetic", "--epochs", "1",
                          "--mode", "classifier", "--seed", seed, *extra, env=env)
        assert result.returncode == 0, result.stderr
        runs[seed] = run_id_of(result)
    return {"first": runs["1"], "second": runs["2"], "model": "team-router"}
