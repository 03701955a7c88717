"""Credentials from the environment, from `.env` or inside the URI all reach the auth server."""

from __future__ import annotations

import json

import pytest
import team_servers as ts
from team_helpers import run_id_of

# Credentials in the environment are what test_trainers.py and the `trained` fixture use.
MODES = (".env", "uri")


@pytest.mark.parametrize("mode", MODES)
def test_train_then_read_back_with_credentials_from(mode, team, auth_server):
    env = team.credentials(mode, auth_server.url, ts.ALICE, ts.ALICE_PASSWORD)

    trained = team.run("train", "advanced", "--dataset", "synthetic", "--epochs", "1",
                       "--seed", "7", env=env)
    assert trained.returncode == 0, trained.stderr
    run_id = run_id_of(trained)

    runs = team.run("model", "runs", "advanced_training", "--output", "json", env=env)
    assert runs.returncode == 0, runs.stderr
    assert run_id in [run["run_id"] for run in json.loads(runs.stdout)]
    shown = team.run("model", "show", run_id, "--output", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["status"] == "FINISHED" and detail["params"]["seed"] == "7"
    assert auth_server.admin_client().get_run(run_id).info.status == "FINISHED"

