"""ModelManager.route: the top agent and every agent's probability per task description."""

from __future__ import annotations

import pytest

from agentnn.errors import InputError, ModelError
from agentnn.managers.model_manager import ModelManager


def test_route_picks_the_agent_each_task_is_about(store_uri, router_version):
    tasks = [
        "forecast next quarter revenue and check the invoice",
        "is this contract clause a liability for compliance",
        "the python server deployment fails with a stack trace",
    ]
    with ModelManager(store_uri) as manager:  # close(): the call counts reach the load's run
        decisions = manager.route(tasks, model="agent-router@champion")
    assert [d.agent for d in decisions] == ["finance", "legal", "tech"]
    for decision, task in zip(decisions, tasks):
        assert decision.task == task
        assert set(decision.scores) == {"finance", "legal", "tech"}
        assert sum(decision.scores.values()) == pytest.approx(1.0)
        assert decision.score == max(decision.scores.values())


def test_route_of_no_tasks_is_empty_and_one_string_is_refused(store_uri, router_version):
    with ModelManager(store_uri) as manager:
        assert manager.route([], model="agent-router/1") == []
        with pytest.raises(InputError, match="list of task descriptions"):
            manager.route("one task", model="agent-router/1")


def test_route_refuses_a_model_that_names_no_agents(store_uri, client, router_version):
    import mlflow
    import torch

    from agentnn.managers.builders import MLP_BUILDER, build_mlp
    from agentnn.mlflow_integration.models.format import log_torch_model

    mlflow.set_tracking_uri(store_uri)
    with mlflow.start_run():
        info = log_torch_model(build_mlp({"n_features": 4, "n_outputs": 2}), builder=MLP_BUILDER,
                               config={"n_features": 4, "n_outputs": 2},
                               input_example=torch.zeros(1, 4).numpy())
    with pytest.raises(ModelError, match="not a routing model"):
        ModelManager(store_uri).route(["a task"], model=info.model_uri)


def test_five_route_calls_make_one_load_run_that_counts_five_calls(store_uri, client,
                                                                   router_version):
    tasks = ["forecast next quarter revenue", "is this contract clause a liability"]
    with ModelManager(store_uri) as manager:
        for _ in range(5):
            manager.route(tasks, model="agent-router@champion")
    (experiment,) = [e for e in client.search_experiments() if e.name == "model_management"]
    (run,) = client.search_runs([experiment.experiment_id])  # one load, not one run per call
    assert run.info.status == "FINISHED"
    assert run.data.params["source"] == "agent-router@champion"
    assert run.data.metrics["calls"] == 5  # close() waited until the store had the counts
    assert run.data.metrics["tasks"] == 10


def test_route_calls_are_counted_at_exit_without_close(store_uri, router_version, workdir):
    import subprocess
    import sys
    import time

    import mlflow

    script = (
        "from agentnn.managers.model_manager import ModelManager\n"
        f"manager = ModelManager({store_uri!r})\n"
        "for _ in range(3):\n"
        "    manager.route(['check the invoice'], model='agent-router@champion')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=workdir, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    client = mlflow.MlflowClient(store_uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "model_management"]
    deadline = time.monotonic() + 60  # the writer process it handed over to sends them
    while True:
        (run,) = client.search_runs([experiment.experiment_id])
        if "calls" in run.data.metrics or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert run.data.metrics["calls"] == 3
