"""A server whose credentials ride in the URI (``http://admin:PW@host:port``): the one probe
gets through its basic auth, and a run that fell back while it was down reaches it by itself."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from offline_helpers import assert_whole_copy, log_full_run, wait_for

from agentnn.mlflow_integration import ExperimentTracker
from agentnn.mlflow_integration.offline.push import store_answers
from agentnn.mlflow_integration.store.client import Store
from agentnn.mlflow_integration.store.probe import ServerProbe

ADMIN_PASSWORD = "adminPw-Vq83nR2x"
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
# An authenticated request waits for the server's password hash (PBKDF2), seconds on a busy
# machine; /health, which the pusher asks, needs no hash.
AUTH_TIMEOUT = 30.0


@pytest.fixture
def auth_port(workdir: Path, server_control) -> int:
    """A free loopback port for a basic-auth server started later in the test."""
    return server_control[2]()


@pytest.mark.server
def test_a_probe_with_user_and_password_in_the_uri_passes_basic_auth(
    workdir: Path, auth_port: int, start_server
):
    start_server(auth_port, ADMIN_PASSWORD)
    uri = f"http://admin:{ADMIN_PASSWORD}@127.0.0.1:{auth_port}"

    assert store_answers(uri)
    assert ServerProbe.of(uri, AUTH_TIMEOUT).get(SEARCH)[0] == 200
    assert ServerProbe.of(f"http://127.0.0.1:{auth_port}", AUTH_TIMEOUT).get(SEARCH)[0] == 401
    health = Store.resolve(uri).check()
    assert health.reachable and health.credentials_ok is True
    assert ADMIN_PASSWORD not in str(health.to_dict())


@pytest.mark.server
def test_a_run_fallen_back_with_credentials_in_the_uri_is_pushed_by_the_writer(
    workdir: Path, auth_port: int, start_server, monkeypatch: pytest.MonkeyPatch
):
    uri = f"http://admin:{ADMIN_PASSWORD}@127.0.0.1:{auth_port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = ExperimentTracker("routing")  # the server is down: the run falls back
    run_id, _ = log_full_run(tracker, workdir, steps=300)
    local = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    assert local.get_run(run_id).data.tags["agentnn.push"] == "pending"

    start_server(auth_port, ADMIN_PASSWORD)
    wait_for(lambda: local.get_run(run_id).data.tags.get("agentnn.push") == "done",
             what="the writer pushed the run")

    assert_whole_copy(local, mlflow.MlflowClient(uri), run_id)
    assert ADMIN_PASSWORD not in local.get_run(run_id).data.tags["agentnn.pushed_to"]
