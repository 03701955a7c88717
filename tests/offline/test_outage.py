"""A long outage while a run goes (server down about a minute, then back) loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest

from agentnn.mlflow_integration import ExperimentTracker

OUTAGE = 60.0  # seconds the loop logs while the server is down


@pytest.mark.server
@pytest.mark.slow
def test_a_minute_without_the_server_loses_no_point(workdir: Path, server_control,
                                                     start_server):
    _, stop, free_port = server_control
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(port)
    tracker = ExperimentTracker("routing", tracking_uri=uri, drain_timeout=300)
    step = 0

    with tracker.start_run(params={"lr": 0.1}) as run:
        for step in range(200):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 1000}, step=step)
        stop(server)
        outage_ends = time.monotonic() + OUTAGE
        while time.monotonic() < outage_ends:
            step += 1
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 1000}, step=step)
            time.sleep(0.02)
        start_server(port)  # the same store, on the same port
        last_before = step
        for step in range(last_before + 1, last_before + 201):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 1000}, step=step)

    client = mlflow.MlflowClient(uri)
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.data.params == {"lr": "0.1"}
    for key in ("loss", "acc"):
        assert sorted(p.step for p in client.get_metric_history(run.run_id, key)) == list(
            range(step + 1))
