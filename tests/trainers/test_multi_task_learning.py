"""`multi_task_learning.train`: per-task metrics, task weights, a self-describing model."""

from __future__ import annotations

import pytest
from trainer_helpers import TIMING_KEYS, Interrupted, history, run_count

from agentnn.errors import TrainerConfigError
from agentnn.nn_models import multi_task_learning as mtl


def test_all_tasks_learn_and_the_model_rebuilds_from_the_artifact_alone(
    routing_data, make_tracker, client, store_uri, model_cache
):
    result = mtl.train({"epochs": 10}, routing_data, tracker=make_tracker("multi_task_learning"))

    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(result.experiment_id).name == "multi_task_learning"
    assert run.data.params["tasks"] == "['agent', 'success', 'response_time']"
    assert run.data.params["task_weights.response_time"] == "0.5"
    assert run.data.params["data.sha256"] == routing_data.params["data.sha256"]
    for key in ("train_agent_loss", "val_agent_loss", "val_success_loss",
                "val_response_time_loss", "val_agent_acc", "val_success_acc",
                "val_response_time_mae", "weight_agent", "lr", "samples_per_s"):
        assert [step for step, _ in history(client, result.run_id, key)] == list(
            range(1, result.epochs_run + 1)), key
    assert result.best_metrics["test_agent_acc"] >= 0.8  # routing; chance is 0.25
    assert result.best_metrics["test_success_acc"] >= 0.65  # success is noisy; majority ~0.5

    from agentnn.data import build_route_inputs
    from agentnn.mlflow_integration.models.loading import load_model

    loaded = load_model(result.model_uri, tracking_uri=store_uri)
    assert loaded.spec["config"]["tasks"] == ["agent", "success", "response_time"]
    assert set(loaded.metadata["tasks"]) == {"agent", "success", "response_time"}
    import torch

    inputs = build_route_inputs(["audit trail for the balance sheet"], loaded.metadata)
    with torch.no_grad():
        output = loaded.module(torch.from_numpy(inputs))
    assert {name: tuple(value.shape) for name, value in output.items()} == {
        "agent_logits": (1, 4), "success_logits": (1, 4), "response_time": (1, 4)}


def test_uncertainty_weighting_learns_task_weights(small_routing_data, make_tracker, client):
    result = mtl.train({"epochs": 4, "weighting": "uncertainty"}, small_routing_data,
                       tracker=make_tracker("multi_task_learning"))

    weights = [value for _, value in history(client, result.run_id, "weight_success")]
    assert len(weights) == 4 and weights[0] != weights[-1]


def test_a_subset_of_tasks_gives_only_those_heads(small_routing_data, make_tracker, store_uri,
                                                  model_cache):
    result = mtl.train({"epochs": 2, "tasks": ["success", "response_time"]}, small_routing_data,
                       tracker=make_tracker("multi_task_learning"))

    assert "val_agent_acc" not in result.best_metrics
    from agentnn.mlflow_integration.models.loading import load_model

    loaded = load_model(result.model_uri, tracking_uri=store_uri)
    assert "route_input" not in loaded.metadata  # no agent head: it cannot route
    import torch

    with torch.no_grad():
        output = loaded.module(torch.zeros(2, small_routing_data.feature_dim))
    assert set(output) == {"success_logits", "response_time"}


def test_same_seed_gives_the_same_metrics(small_routing_data, make_tracker):
    tracker = make_tracker("multi_task_learning")
    config = {"epochs": 2, "seed": 9, "weighting": "uncertainty"}
    first = mtl.train(config, small_routing_data, tracker=tracker)
    second = mtl.train(config, small_routing_data, tracker=tracker)

    def comparable(result):
        return {k: v for k, v in result.best_metrics.items() if k not in TIMING_KEYS}

    assert comparable(first) == comparable(second)


def test_resume_continues_the_same_run(small_routing_data, make_tracker, client):
    tracker = make_tracker("multi_task_learning")
    config = {"epochs": 3, "seed": 1}

    def crash(epoch, metrics):
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        mtl.train(config, small_routing_data, tracker=tracker, on_epoch=crash)
    (run,) = client.search_runs([tracker.experiment_id])

    resumed = mtl.train(config, small_routing_data, tracker=tracker,
                        resume_from=f"checkpoints/multi_task_learning/{run.info.run_id}")
    assert resumed.run_id == run.info.run_id
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert [s for s, _ in history(client, run.info.run_id, "val_loss")] == [1, 2, 3]
    steps = [s for s, _ in history(client, run.info.run_id, "step_loss")]
    assert steps == list(range(1, len(steps) + 1))


@pytest.mark.parametrize("config, message", [
    ({"tasks": []}, "tasks"),
    ({"tasks": ["agent", "sentiment"]}, "sentiment"),
    ({"weighting": "dynamic"}, "weighting"),
    ({"hidden_dims": [64, 0]}, "hidden_dims"),
    ({"task_weights": {"success": -1.0}}, "task_weights.success"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_config_raises_before_any_run(config, message, small_routing_data, make_tracker,
                                          client):
    with pytest.raises(TrainerConfigError, match=message):
        mtl.train(config, small_routing_data, tracker=make_tracker("multi_task_learning"))
    assert run_count(client) == 0


def test_data_that_is_not_an_interaction_log_raises_before_any_run(digits_data, make_tracker,
                                                                    client):
    with pytest.raises(TrainerConfigError, match="interaction log"):
        mtl.train({}, digits_data, tracker=make_tracker("multi_task_learning"))
    assert run_count(client) == 0
