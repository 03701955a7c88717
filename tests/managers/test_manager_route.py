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
    decisions = ModelManager(store_uri).route(tasks, model="agent-router@champion")
    assert [d.agent for d in decisions] == ["finance", "legal", "tech"]
    for decision, task in zip(decisions, tasks):
        assert decision.task == task
        assert set(decision.scores) == {"finance", "legal", "tech"}
        assert sum(decision.scores.values()) == pytest.approx(1.0)
        assert decision.score == max(decision.scores.values())


def test_route_of_no_tasks_is_empty_and_one_string_is_refused(store_uri, router_version):
    manager = ModelManager(store_uri)
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
