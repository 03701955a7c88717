"""Three hosts on a private network: a team server and two trainers.

The server host runs PostgreSQL (as the ``postgres`` user) and `mlflow server` with basic auth,
both listening on the host's own address; each trainer host is a namespace of its own that
reaches them over the network, as a colleague's machine would. The network and the servers are
made once per session and removed, with every process stopped by its own id, at its end. The
tests skip, saying why, where namespaces cannot be made (not root, no iproute2, a kernel that
refuses) or PostgreSQL is not installed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import team_servers as ts
from multihost_net import Host, Network, NetworkUnavailable, call_in

HOSTS = ["server", "trainer1", "trainer2"]


@dataclass
class TeamSite:
    """The network, the server host's PostgreSQL and basic-auth `mlflow server`."""

    network: Network
    postgres: ts.Postgres
    url: str
    """The server's URL, on the server host's address (no credentials in it)."""

    @property
    def trainers(self) -> tuple[Host, Host]:
        return self.network.hosts["trainer1"], self.network.hosts["trainer2"]

    def tracking_env(self, url: str | None = None) -> dict[str, str]:
        """What a trainer needs to log as alice to the server (or ``url``), the password in
        the environment."""
        return {"MLFLOW_TRACKING_URI": url or self.url, "MLFLOW_TRACKING_USERNAME": ts.ALICE,
                "MLFLOW_TRACKING_PASSWORD": ts.ALICE_PASSWORD}

    def sql(self, query: str, database: str = "mlflow_tracking") -> list[list[str]]:
        """Rows of ``query`` on the server's database (over its Unix socket), as text."""
        out = self.postgres.psql(query, database=database).stdout
        return [line.split("|") for line in out.splitlines() if line]


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamSite]:
    bin_dir = ts.postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("the PostgreSQL server binaries are not installed")
    try:
        network = Network.create(HOSTS)
    except NetworkUnavailable as reason:
        pytest.skip(f"no network namespaces here: {reason}")
    server_host = network.hosts["server"]
    started: list[subprocess.Popen] = []
    postgres: ts.Postgres | None = None
    try:
        postgres = call_in(server_host, lambda: ts.start_postgres(bin_dir, server_host.address))
        allow_network(postgres, server_host.address)
        postgres.create_database("mlflow_tracking")
        postgres.create_database("mlflow_users")
        root = tmp_path_factory.mktemp("multihost-server")
        process, url = call_in(server_host, lambda: ts.start_mlflow_server(
            root, postgres.url_for_pgpassword("mlflow_tracking"),
            auth_database_uri=postgres.url_for_pgpassword("mlflow_users"),
            pg_password=ts.PG_PASSWORD, host=server_host.address,
        ))
        started.append(process)
        call_in(server_host, lambda: create_user(url, ts.ALICE, ts.ALICE_PASSWORD))
        yield TeamSite(network, postgres, url)
    finally:
        for process in started:
            ts.stop_process_group(process)
        if postgres is not None:
            postgres.stop()
        network.remove()


@pytest.fixture(scope="session")
def agentnn_app(site: TeamSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server --app-name agentnn` (basic auth composed) beside the stock one on the
    server host, on databases of its own; yields its URL."""
    host = site.network.hosts["server"]
    site.postgres.create_database("agentnn_tracking")
    site.postgres.create_database("agentnn_users")
    root = tmp_path_factory.mktemp("multihost-agentnn-app")
    process, url = call_in(host, lambda: ts.start_mlflow_server(
        root, site.postgres.url_for_pgpassword("agentnn_tracking"),
        auth_database_uri=site.postgres.url_for_pgpassword("agentnn_users"),
        pg_password=ts.PG_PASSWORD, app_name="agentnn", host=host.address,
    ))
    try:
        call_in(host, lambda: create_user(url, ts.ALICE, ts.ALICE_PASSWORD))
        yield url
    finally:
        ts.stop_process_group(process)


def create_user(url: str, user: str, password: str) -> None:
    """The admin adds a user through MLflow's REST API (basic auth's default: READ + create)."""
    token = base64.b64encode(f"{ts.ADMIN_USER}:{ts.ADMIN_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        url + "/api/2.0/mlflow/users/create", method="POST",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


def allow_network(postgres: ts.Postgres, address: str) -> None:
    """Let the other hosts of the /24 connect with the password (initdb allows loopback only)."""
    subnet = address.rsplit(".", 1)[0] + ".0/24"
    with open(postgres.data_dir / "pg_hba.conf", "a", encoding="utf-8") as hba:
        hba.write(f"host all all {subnet} scram-sha-256\n")
    postgres.psql("select pg_reload_conf()")


@pytest.fixture(autouse=True)
def no_writer_left_behind(tmp_path: Path) -> Iterator[None]:
    """A writer process a trainer left behind (its records unsent) is stopped by its pid, so
    it cannot hold a host's namespace after the network is gone."""
    yield
    from agentnn.mlflow_integration.writer.loop import lock_holder, writer_running

    for lock in tmp_path.rglob("writer.lock"):
        pid = lock_holder(lock.parent)
        if writer_running(lock.parent) and pid is not None and pid != os.getpid():
            os.kill(pid, signal.SIGTERM)
