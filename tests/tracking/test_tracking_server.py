"""The tracker against a real `mlflow server`: same API, same results as on SQLite."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from agentnn.mlflow_integration import ExperimentTracker


@pytest.mark.server
def test_params_metrics_status_and_artifacts_reach_a_tracking_server(
    mlflow_server: str, workdir: Path
):
    tracker = ExperimentTracker("server-run", tracking_uri=mlflow_server)
    (workdir / "notes.txt").write_text("hello")
    with tracker.start_run(params={"optimizer": {"lr": 0.01}}) as run:
        for step in range(2500):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 2500}, step=step)
        run.log_artifact(workdir / "notes.txt")
    client = mlflow.MlflowClient(mlflow_server)
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.data.params == {"optimizer.lr": "0.01"}
    assert len(client.get_metric_history(run.run_id, "acc")) == 2500
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["notes.txt"]
    assert tracker.best_run("loss").run_id == run.run_id
