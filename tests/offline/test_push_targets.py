"""A push target must exist, as a read's store must; a pending run is done only where meant."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from agentnn.errors import StoreNotFoundError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.sdk.nn_models import ModelManager


def _one_run(store_uri: str) -> str:
    with ExperimentTracker("routing", tracking_uri=store_uri).start_run() as run:
        run.log_metrics({"loss": 0.5}, step=0)
    return run.run_id


@pytest.mark.parametrize("target", ["typo/mlflow.db", "mlfow.db"])
def test_a_push_to_a_sqlite_path_with_no_store_is_refused_and_creates_nothing(
    cli, store_uri: str, workdir: Path, target: str
):
    run_id = _one_run(store_uri)
    before = sorted(p.name for p in workdir.iterdir())

    result = cli("model", "push", run_id, "--to", f"sqlite:///{workdir / target}",
                 "--tracking-uri", store_uri)

    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and f"no MLflow store at {workdir / target}" in line
    assert sorted(p.name for p in workdir.iterdir()) == before
    tags = mlflow.MlflowClient(store_uri).get_run(run_id).data.tags
    assert "agentnn.pushed_to" not in tags and "agentnn.push" not in tags


def test_the_sdk_refuses_the_same_target(store_uri: str, workdir: Path):
    run_id = _one_run(store_uri)
    with pytest.raises(StoreNotFoundError):
        ModelManager(store_uri).push_runs([run_id], to=f"sqlite:///{workdir / 'typo.db'}")
    assert not (workdir / "typo.db").exists()


def test_create_makes_the_new_store_on_purpose(cli, store_uri: str, workdir: Path):
    run_id = _one_run(store_uri)
    target = f"sqlite:///{workdir / 'new' / 'mlflow.db'}"
    (workdir / "new").mkdir()

    result = cli("model", "push", run_id, "--to", target, "--create", "--tracking-uri", store_uri)

    assert result.exit_code == 0, result.output
    (copy,) = mlflow.MlflowClient(target).search_runs(
        [mlflow.MlflowClient(target).get_experiment_by_name("routing").experiment_id])
    assert copy.data.tags["agentnn.source_run_id"] == run_id


@pytest.mark.server
def test_a_pending_run_pushed_to_another_store_stays_pending(
    cli, dead_server: str, workdir: Path, second_store: str
):
    tracker = ExperimentTracker("routing")  # the server does not answer: falls back
    with tracker.start_run() as run:
        run.log_metrics({"loss": 0.5}, step=0)
    local = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    assert mlflow.MlflowClient(local).get_run(run.run_id).data.tags["agentnn.push"] == "pending"

    pushed = cli("model", "push", run.run_id, "--to", second_store, "--tracking-uri", local)

    assert pushed.exit_code == 0, pushed.output
    assert mlflow.MlflowClient(local).get_run(run.run_id).data.tags["agentnn.push"] == "pending"
    listed = cli("model", "runs", "--pending", "--output", "json")
    assert run.run_id in listed.stdout


@pytest.mark.server
def test_push_to_a_server_prints_only_json_on_stdout(cli, store_uri: str, mlflow_server: str):
    run_id = _one_run(store_uri)

    result = cli("model", "push", run_id, "--to", mlflow_server, "--output", "json",
                 "--tracking-uri", store_uri)

    assert result.exit_code == 0, result.output
    (pushed,) = json.loads(result.stdout)  # MLflow's "View run … at:" lines would break this
    assert pushed["source_run_id"] == run_id and pushed["created"] is True
    assert "View run" not in result.output
