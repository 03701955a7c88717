"""A run started while its server was down reaches it by itself once the server is back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import mlflow
import pytest
from offline_helpers import assert_model_loads, assert_whole_copy, copies_of, log_full_run, wait_for

from agentnn.mlflow_integration import ExperimentTracker


def local_client(workdir: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")


@pytest.mark.server
def test_a_run_started_during_an_outage_reaches_the_server_whole_and_once(
    dead_server: str, workdir: Path, start_server
):
    tracker = ExperimentTracker("routing")
    run_id, module = log_full_run(tracker, workdir, steps=1500, register_as="router")
    local = local_client(workdir)

    start_server(int(dead_server.rsplit(":", 1)[1]))
    wait_for(lambda: local.get_run(run_id).data.tags.get("agentnn.push") == "done",
             what="the writer pushed the run")

    server = mlflow.MlflowClient(dead_server)
    copy = assert_whole_copy(local, server, run_id)
    assert_model_loads(dead_server, copy, module)
    assert [v.run_id for v in server.search_model_versions("name = 'router'")] == [
        copy.info.run_id]
    assert local.get_run(run_id).data.tags["agentnn.pushed_to"] == (
        f"{dead_server} {copy.info.run_id}")


@pytest.mark.server
def test_push_pending_twice_changes_nothing(dead_server: str, workdir: Path, start_server, cli):
    tracker = ExperimentTracker("routing")
    run_ids = [log_full_run(tracker, workdir, steps=300)[0] for _ in range(2)]
    start_server(int(dead_server.rsplit(":", 1)[1]))

    first = cli("model", "push", "--pending", "--output", "json")
    second = cli("model", "push", "--pending", "--output", "json")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert not [r for r in json.loads(second.stdout) if r["created"] or r["metrics"]]
    local, server = local_client(workdir), mlflow.MlflowClient(dead_server)
    for run_id in run_ids:
        assert_whole_copy(local, server, run_id)
        assert local.get_run(run_id).data.tags["agentnn.push"] == "done"
    assert json.loads(cli("model", "runs", "--pending", "--output", "json").stdout) == []


@pytest.mark.server
@pytest.mark.slow
def test_a_run_still_going_when_the_server_returns_follows_it_there(
    dead_server: str, workdir: Path, start_server
):
    tracker = ExperimentTracker("routing")
    stop = threading.Event()
    steps: list[int] = []

    with tracker.start_run() as run:
        def train() -> None:
            step = 0
            while not stop.is_set():
                run.log_metric("loss", 1 / (step + 1), step=step)
                steps.append(step)
                step += 1
                time.sleep(0.05)

        worker = threading.Thread(target=train)
        worker.start()
        try:
            start_server(int(dead_server.rsplit(":", 1)[1]))
            server = mlflow.MlflowClient(dead_server)
            wait_for(lambda: bool(copies_of(server, run.run_id)), what="a copy while it runs")
            copy_id = copies_of(server, run.run_id)[0].info.run_id
            seen = len(server.get_metric_history(copy_id, "loss"))
            wait_for(lambda: len(server.get_metric_history(copy_id, "loss")) > seen,
                     what="new points reach the copy while the run goes")
            assert server.get_run(copy_id).info.status == "RUNNING"
        finally:
            stop.set()
            worker.join()

    local = local_client(workdir)
    wait_for(lambda: local.get_run(run.run_id).data.tags.get("agentnn.push") == "done",
             what="the finished run pushed")
    copy = assert_whole_copy(local, server, run.run_id)
    assert len(server.get_metric_history(copy.info.run_id, "loss")) == len(steps)
