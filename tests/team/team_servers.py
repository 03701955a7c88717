"""A real team store for the tests: PostgreSQL 15 in a temporary folder, `mlflow server` on it.

PostgreSQL refuses to run as root and CI runs as root, so when the tests run as root every
server-side command runs as the ``postgres`` system user (``runuser -u postgres --``) in a
folder that user owns. Every process started here is stopped by its own process group id.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PG_VERSION_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                   "/usr/lib/postgresql/14/bin")
PG_SYSTEM_USER = "postgres"
TEMP_PREFIX = "agentnn-pg-"  # the cluster's folder under the system temp dir
PG_START_TIMEOUT = 60.0  # seconds for initdb'd PostgreSQL to accept connections
SERVER_START_TIMEOUT = 240.0  # `mlflow server` takes 20 s+ here, much more when the cores are busy

# The secrets the tests look for everywhere afterwards; distinctive so a grep cannot miss them.
PG_ROLE = "agentnn"
PG_PASSWORD = "pgPw-7f3q9Kx2"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "adminPw-Zr81kQ4v"
ALICE = "alice"  # may create experiments and log to them
ALICE_PASSWORD = "alicePw-Hd62mT0w"
RITA = "rita"  # READ on every experiment, nothing more
RITA_PASSWORD = "ritaPw-Ls40bY7n"
WRONG_PASSWORD = "wrongPw-Qa19cE5u"
DEPLOY_AUTH_INI = Path(__file__).parents[2] / "deploy" / "basic_auth.ini"
SECRETS = (PG_PASSWORD, ADMIN_PASSWORD, ALICE_PASSWORD, RITA_PASSWORD, WRONG_PASSWORD)


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    for candidate in PG_VERSION_DIRS:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process we started, and its children, by its own process group id."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run it as the postgres system user instead."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_SYSTEM_USER, "--", *command]
    return command


@dataclass
class Postgres:
    """A running PostgreSQL cluster on 127.0.0.1:port, password auth on loopback."""

    bin_dir: Path
    root: Path
    port: int
    process: subprocess.Popen | None = None
    listen: str = "127.0.0.1"  # the host's address, where another host's clients connect

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str, password: str = PG_PASSWORD) -> str:
        return f"postgresql://{PG_ROLE}:{password}@{self.listen}:{self.port}/{database}"

    def url_for_pgpassword(self, database: str) -> str:
        """The README's server form: psycopg2, the password left to PGPASSWORD."""
        return f"postgresql+psycopg2://{PG_ROLE}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, PG_SYSTEM_USER, PG_SYSTEM_USER)
        subprocess.run(
            _as_server_user([
                str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C", "--no-sync",
            ]),
            check=True, capture_output=True, timeout=120,
        )
        log = open(self.root / "postgres.log", "wb")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            _as_server_user([
                str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-k", str(self.root), "-c", f"listen_addresses={self.listen_addresses}",
                "-c", "fsync=off",
                "-c", "max_connections=200",
            ]),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + PG_START_TIMEOUT
        while self.psql("select 1", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "PostgreSQL did not start: " + (self.root / "postgres.log").read_text()[-2000:]
                )
            time.sleep(0.3)
        self.psql(f"create role {PG_ROLE} login password '{PG_PASSWORD}'")

    @property
    def listen_addresses(self) -> str:
        return ",".join(dict.fromkeys(("127.0.0.1", self.listen)))

    def psql(self, sql: str, database: str = "postgres", check: bool = True
             ) -> subprocess.CompletedProcess:
        """Run SQL as the superuser over the cluster's own Unix socket (trust auth)."""
        return subprocess.run(
            [str(self.bin_dir / "psql"), "-h", str(self.root), "-p", str(self.port),
             "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            check=check, capture_output=True, text=True, timeout=60,
        )

    def create_database(self, name: str) -> str:
        """A new database owned by the test role; returns its URL (password inside)."""
        self.psql(f"create database {name} owner {PG_ROLE}")
        return self.url(name)

    def dump(self, database: str) -> str:
        """The whole database as SQL text, data included."""
        return subprocess.run(
            [str(self.bin_dir / "pg_dump"), "-h", str(self.root), "-p", str(self.port),
             "-U", "postgres", database],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout

    def databases(self) -> list[str]:
        out = self.psql("select datname from pg_database where not datistemplate").stdout
        return [name for name in out.split() if name != "postgres"]

    def stop(self) -> None:
        """Fast shutdown, then remove the temporary folder start_postgres made."""
        if self.process is not None:
            stop_process_group(self.process, signal.SIGINT)  # PostgreSQL's fast shutdown
        if self.root.parent.name.startswith(TEMP_PREFIX):
            shutil.rmtree(self.root.parent, ignore_errors=True)


def start_postgres(bin_dir: Path, listen: str = "127.0.0.1") -> Postgres:
    """initdb + postgres in a new folder under the system temp dir (which others can traverse);
    it listens on loopback and on ``listen``."""
    root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    os.chmod(root, 0o755)
    cluster = Postgres(bin_dir=bin_dir, root=root / "cluster", port=free_port(), listen=listen)
    cluster.start()
    return cluster


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited early with {process.returncode}: "
                               + log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer {url} within {timeout} s: "
                       + log.read_text(errors="replace")[-3000:])


def start_mlflow_server(
    root: Path, backend_uri: str, *, auth_database_uri: str | None = None,
    pg_password: str | None = None, app_name: str = "basic-auth", host: str = "127.0.0.1",
) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on PostgreSQL with proxied artifacts; basic auth when given its database.

    With basic auth it follows the README's "Team server" steps: the database password in
    PGPASSWORD (not in the URIs), `mlflow db upgrade` first, `deploy/basic_auth.ini` with its
    database pointed here, `--serve-artifacts` and `--allowed-hosts`.
    ``app_name`` is the ``--app-name`` given with basic auth (``agentnn`` composes it).
    ``host`` is the address it listens on.
    Returns the process and the server's URL (no credentials in it).
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job consumers: fewer processes
    if pg_password is not None:
        env["PGPASSWORD"] = pg_password
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
        "--host", host, "--port", str(port), "--workers", "1",
    ]
    if auth_database_uri is not None:
        subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", backend_uri],
                       env=env, check=True, capture_output=True, timeout=SERVER_START_TIMEOUT)
        ini = root / "basic_auth.ini"
        # The file as shipped (its auth cache spares eight processes starting at once a
        # password hash per request), but for the test cluster's port.
        ini.write_text(re.sub(r"(?m)^database_uri = .*$", f"database_uri = {auth_database_uri}",
                              DEPLOY_AUTH_INI.read_text()))
        env.update(
            MLFLOW_AUTH_CONFIG_PATH=str(ini),
            MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN_PASSWORD,
            MLFLOW_FLASK_SERVER_SECRET_KEY="team-tests-secret-key",
        )
        allowed = ",".join(dict.fromkeys(("127.0.0.1:*", "localhost:*", f"{host}:*")))
        command += ["--app-name", app_name, "--allowed-hosts", allowed]
    log_path = root / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                               cwd=root, start_new_session=True)
    log.close()
    url = f"http://{host}:{port}"
    try:
        wait_for_health(url, process, log_path, SERVER_START_TIMEOUT)
    except BaseException:
        stop_process_group(process)
        raise
    return process, url


def with_credentials(url: str, user: str, password: str) -> str:
    """``http://user:password@host:port``, the form MLflow itself accepts."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}"
