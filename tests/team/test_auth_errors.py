"""Refusals by the auth server: a wrong password and a READ-only user, each one clear line.

The commands run under a timeout guard well below MLflow's minutes of HTTP retries, so a
refusal that is retried instead of reported fails the test (no wall-clock assertions).
"""

from __future__ import annotations

import uuid

import pytest
import team_servers as ts
from team_helpers import error_line

REFUSAL_TIMEOUT = 240  # seconds, imports and data included; MLflow's own retries of a refused
# request would add minutes on top


@pytest.mark.parametrize("command", [
    ("train", "advanced", "--dataset", "synthetic", "--epochs", "1"),
    ("model", "experiments"),
    ("model", "load", "models:/team-router@champion"),
])
@pytest.mark.parametrize("mode", ["env", "uri"])
def test_a_wrong_password_is_one_line_naming_the_masked_uri(mode, command, team, auth_server):
    env = team.credentials(mode, auth_server.url, ts.ALICE, ts.WRONG_PASSWORD)
    masked = (auth_server.url if mode == "env"
              else f"http://{ts.ALICE}:***@127.0.0.1:{auth_server.port}")

    result = team.run(*command, env=env, timeout=REFUSAL_TIMEOUT)

    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "authentication failed" in line and f"'{masked}'" in line, line


def test_the_sdk_raises_authentication_failed_with_the_masked_uri(team, auth_server):
    from agentnn.errors import AuthenticationError
    from agentnn.sdk.nn_models import ModelManager

    with pytest.raises(AuthenticationError) as raised:
        ModelManager(auth_server.as_user(ts.ALICE, ts.WRONG_PASSWORD)).list_experiments()
    message = str(raised.value)
    assert "authentication failed" in message and ts.WRONG_PASSWORD not in message
    assert f"http://{ts.ALICE}:***@127.0.0.1:{auth_server.port}" in message


@pytest.fixture
def alices_experiment(auth_server) -> str:
    """An experiment alice owns; rita may only read it."""
    import mlflow

    alice = mlflow.MlflowClient(auth_server.as_user(ts.ALICE, ts.ALICE_PASSWORD))
    return alice.create_experiment(f"alice-{uuid.uuid4().hex[:8]}")


def test_a_read_only_user_who_trains_gets_one_line_permission_denied(team, auth_server):
    import mlflow

    alice = mlflow.MlflowClient(auth_server.as_user(ts.ALICE, ts.ALICE_PASSWORD))
    if alice.get_experiment_by_name("advanced_training") is None:
        alice.create_experiment("advanced_training")
    env = team.credentials("env", auth_server.url, ts.RITA, ts.RITA_PASSWORD)

    result = team.run("train", "advanced", "--dataset", "synthetic", "--epochs", "1", env=env,
                      timeout=REFUSAL_TIMEOUT)

    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "permission denied" in line and f"'{auth_server.url}'" in line, line


def test_the_sdk_raises_permission_denied_for_a_read_only_user(team, auth_server, trained):
    from agentnn.errors import PermissionDeniedError
    from agentnn.sdk.nn_models import ModelManager

    manager = ModelManager(auth_server.as_user(ts.RITA, ts.RITA_PASSWORD))
    assert trained["first"] in [r.run_id for r in manager.list_runs("advanced_training",
                                                                    limit=None)]
    with pytest.raises(PermissionDeniedError) as raised:
        manager.set_alias(trained["model"], "rita-was-here", version=1)
    assert "permission denied" in str(raised.value)
    assert f"http://{ts.RITA}:***@127.0.0.1:{auth_server.port}" in str(raised.value)
    assert ts.RITA_PASSWORD not in str(raised.value)


def test_points_refused_for_permission_stay_in_the_journal_until_sync(
    team, auth_server, alices_experiment, monkeypatch
):
    """rita may log when the run starts; then only read. Her points wait in the journal and
    `agentnn model sync` sends them once she may write again."""
    from agentnn.errors import TrackingWarning
    from agentnn.mlflow_integration import ExperimentTracker

    name = auth_server.admin_client().get_experiment(alices_experiment).name
    for key, value in {**team.base_env(), "AGENTNN_DRAIN_TIMEOUT": "10",
                       **team.credentials("env", auth_server.url, ts.RITA, ts.RITA_PASSWORD)
                       }.items():
        monkeypatch.setenv(key, value)
    auth_server.grant(ts.RITA, alices_experiment, "EDIT")
    tracker = ExperimentTracker(name)
    with pytest.warns(TrackingWarning) as caught, tracker.start_run() as run:
        auth_server.revoke(ts.RITA, alices_experiment)  # from here on rita may only read
        for step in range(20):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    denied = [str(w.message) for w in caught if "permission denied" in str(w.message)]
    assert len(denied) == 1, denied
    assert ts.RITA_PASSWORD not in denied[0]
    client = auth_server.admin_client()
    assert client.get_metric_history(run.run_id, "loss") == []

    auth_server.grant(ts.RITA, alices_experiment, "EDIT")
    synced = team.run("model", "sync", env=team.credentials(
        "env", auth_server.url, ts.RITA, ts.RITA_PASSWORD))

    assert synced.returncode == 0, synced.stdout + synced.stderr
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, "loss"))
    assert history == [(step, 1.0 / (step + 1)) for step in range(20)]
    assert client.get_run(run.run_id).info.status == "FINISHED"
