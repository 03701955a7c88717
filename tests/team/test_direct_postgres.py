"""A `postgresql://user:password@…` tracking URI, no server between: train, read, refuse."""

from __future__ import annotations

import json

import pytest
import team_servers as ts
from team_helpers import error_line, run_id_of


@pytest.fixture(scope="module")
def direct_db(postgres) -> str:
    return postgres.create_database("mlflow_direct")


def test_train_list_and_load_through_a_direct_postgresql_uri(team, direct_db, monkeypatch):
    import torch

    from agentnn.sdk.nn_models import ModelManager

    env = {"MLFLOW_TRACKING_URI": direct_db}
    trained = team.run("train", "advanced", "--dataset", "synthetic", "--epochs", "1",
                       "--mode", "classifier", "--register-as", "direct-router", env=env)
    assert trained.returncode == 0, trained.stderr
    run_id = run_id_of(trained)

    runs = team.run("model", "runs", "advanced_training", "--output", "json", env=env)
    assert runs.returncode == 0, runs.stderr
    assert [run["run_id"] for run in json.loads(runs.stdout)] == [run_id]
    manager = ModelManager(direct_db)
    assert manager.best_run("advanced_training", "val_loss").run_id == run_id
    assert manager.get_run(run_id).run.status == "FINISHED"
    loaded = manager.load_model("models:/direct-router/1")
    assert isinstance(loaded.module, torch.nn.Module)


def test_a_wrong_database_password_is_one_line_naming_the_masked_uri(team, direct_db):
    wrong = direct_db.replace(ts.PG_PASSWORD, ts.WRONG_PASSWORD)
    masked = direct_db.replace(ts.PG_PASSWORD, "***")

    result = team.run("model", "experiments", "--tracking-uri", wrong, timeout=120)

    assert result.returncode == 1, result.stdout + result.stderr
    line = error_line(result)
    assert "authentication failed" in line and f"'{masked}'" in line, line
