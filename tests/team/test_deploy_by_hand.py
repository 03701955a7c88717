"""docs/deploy.md's by-hand steps, run as the page writes them, with deploy/'s files as shipped.

The three blocks of the page (the server, adding a user, a client) are read from the page itself,
so a step that stops working fails here. What has to differ on a test machine is replaced, each
for the reason given in SUBSTITUTIONS: the test cluster's port and socket, loopback and a free
port for the server, passwords, and the installed MLflow instead of a new venv (the page's pin
must be the version installed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import team_servers as ts

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "deploy.md"
DB_PASSWORD = "dbPw-deploy-9Qk2x7"
ADMIN_PASSWORD = "adminPw-deploy-4Lm8"
ALICE_PASSWORD = "alicePw-deploy-6Tn3"
START_TIMEOUT = ts.SERVER_START_TIMEOUT


def page_blocks() -> list[str]:
    """The page's bash blocks, in order: server, add a user, client."""
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"(?ms)^```bash\n(.*?)^```", text)


def substituted(script: str, pg: ts.Postgres, server_port: int, workdir: Path) -> str:
    """The page's commands with the machine-specific parts replaced, each for its reason."""
    venv_line = re.search(r"(?m)^python -m venv /opt/mlflow/venv && .*pip install "
                          r"\"mlflow\[auth\]==(?P<pin>[\d.]+)\" psycopg2-binary$", script)
    if venv_line:
        import mlflow

        # The test machine has MLflow installed already; the page's pin must be that version.
        assert venv_line["pin"] == mlflow.__version__, (
            f"docs/deploy.md pins mlflow {venv_line['pin']}, the tested version is "
            f"{mlflow.__version__}")
        script = script.replace(venv_line[0], "python3 -c 'import mlflow, psycopg2'")
    substitutions = [
        # the cluster's superuser over its own socket: `sudo -u postgres psql` on a server
        ("sudo -u postgres psql", f"psql -h {pg.root} -p {pg.port} -U postgres -v ON_ERROR_STOP=1"),
        ("/opt/mlflow/venv/bin/", str(Path(sys.executable).parent) + "/"),
        ("localhost:5432", f"localhost:{pg.port}"),  # the test cluster's port
        ("/srv/mlflow/artifacts", str(workdir / "artifacts")),
        ("--host 0.0.0.0", "--host 127.0.0.1"),  # loopback on a shared test machine
        ("--workers 4", "--workers 1"),  # two cores shared with the rest of the suite
        ("--port 5000", f"--port {server_port}"),
        ("localhost:5000", f"localhost:{server_port}"),
        ("mlflow.example.internal:5000", f"localhost:{server_port}"),
        ("<db password>", DB_PASSWORD),
        ("<admin password>", ADMIN_PASSWORD),
        ("<alice password>", ALICE_PASSWORD),
    ]
    for old, new in substitutions:
        script = script.replace(old, new)
    return script


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=START_TIMEOUT)


@pytest.mark.slow
def test_deploy_steps_run_as_written(postgres: ts.Postgres, tmp_path: Path) -> None:
    server_block, user_block, client_block = page_blocks()
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(REPO / "deploy" / "init-databases.sql", deploy)
    # basic_auth.ini as shipped but for the cluster's port (its database is on localhost)
    (deploy / "basic_auth.ini").write_text(
        (REPO / "deploy" / "basic_auth.ini").read_text().replace(
            "localhost:5432", f"localhost:{postgres.port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AGENTNN_", "PG"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # as the suite's other servers
    port = ts.free_port()

    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", substituted(server_block, postgres, port, tmp_path)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ts.wait_for_health(f"http://localhost:{port}", server, log_path, START_TIMEOUT)
        assert "mlflow" in postgres.databases() and "mlflow_auth" in postgres.databases()
        client_env = {**env, "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
        added = bash(substituted(user_block, postgres, port, tmp_path), tmp_path, client_env)
        assert added.returncode == 0, added.stdout + added.stderr

        checked = bash(substituted(client_block, postgres, port, tmp_path), tmp_path, env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        for check in ("reachable", "auth on", "credentials pass", "artifacts proxied"):
            assert re.search(rf"{check}\s*\W\s*yes", checked.stdout), checked.stdout

        wrong = substituted(client_block, postgres, port, tmp_path).replace(
            ALICE_PASSWORD, "wrongPw-deploy-0000")
        refused = bash(wrong, tmp_path, env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "authentication failed" in refused.stderr, refused.stderr
    finally:
        ts.stop_process_group(server)
