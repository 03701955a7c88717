"""`advanced_training.train`: tracked runs, loadable models, real learning, resume, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from trainer_helpers import TIMING_KEYS, Interrupted, history, run_count

from agentnn.errors import TrainerConfigError
from agentnn.nn_models import advanced_training as at
from agentnn.nn_models.training.checkpoints import list_checkpoints


def test_router_learns_routing_and_logs_params_metrics_and_model(
    routing_data, make_tracker, client, store_uri, model_cache
):
    config = at.AdvancedTrainingConfig(mode="classifier", epochs=10, seed=0)
    result = at.train(config, routing_data, tracker=make_tracker("advanced_training"))

    assert client.get_experiment_by_name("advanced_training").experiment_id == result.experiment_id
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["mode"] == "classifier" and params["learning_rate"] == "0.003"
    assert params["seed"] == "0" and params["model.num_classes"] == "4"
    assert params["data.sha256"] == routing_data.params["data.sha256"]
    assert params["featurizer.dim"] == str(routing_data.feature_dim)
    epochs = result.epochs_run
    for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "epoch_time_s",
                "samples_per_s"):
        assert [step for step, _ in history(client, result.run_id, key)] == list(
            range(1, epochs + 1)), key
    steps_per_epoch = math.ceil(len(routing_data.train) / config.batch_size)
    step_loss = history(client, result.run_id, "step_loss")
    assert [step for step, _ in step_loss] == list(range(1, epochs * steps_per_epoch + 1))
    lrs = [value for _, value in history(client, result.run_id, "lr")]
    assert lrs[-1] < lrs[0]  # cosine schedule

    assert result.best_metrics["test_acc"] >= 0.8  # 4 agents: chance is 0.25

    from agentnn.data import build_route_inputs
    from agentnn.mlflow_integration.models.loading import load_model

    loaded = load_model(result.model_uri, tracking_uri=store_uri)
    assert loaded.metadata["agents"] == list(routing_data.agents)
    texts = ["please reconcile the quarterly budget and the cash flow",
             "fix the memory leak in the kubernetes cluster"]
    import torch

    with torch.no_grad():
        scores = loaded.module(torch.from_numpy(build_route_inputs(texts, loaded.metadata)))
    assert scores.shape == (2, 4)
    picked = [loaded.metadata["agents"][i] for i in scores.argmax(1).tolist()]
    assert picked == ["finance_agent", "tech_agent"]


def test_multimodal_model_predicts_success_and_performance_from_the_data(
    small_routing_data, make_tracker, client, store_uri, model_cache
):
    result = at.train({"mode": "multimodal", "epochs": 3}, small_routing_data,
                      tracker=make_tracker("advanced_training"))

    metrics = client.get_run(result.run_id).data.metrics
    for key in ("val_success_acc", "val_success_loss", "val_performance_loss",
                "val_response_time_mae", "val_confidence_mae", "test_success_acc"):
        assert key in metrics
    from agentnn.mlflow_integration.models.loading import load_model

    loaded = load_model(result.model_uri, tracking_uri=store_uri)
    layout = loaded.metadata["input_layout"]
    width = layout["task_dim"] + layout["agent_dim"] + layout["feedback_dim"]
    rows = np.random.default_rng(0).random((3, width), dtype=np.float32)
    import torch

    with torch.no_grad():
        output = loaded.module(torch.from_numpy(rows))
    assert output["success_logit"].shape == (3,)
    assert output["performance"].shape == (3, 2)
    # the performance targets are the data's response times, not a constant
    assert loaded.metadata["target_scaling"]["response_time"]["std"] > 0.1


def test_digits_classifier_reaches_95_percent_test_accuracy(digits_data, make_tracker):
    config = {"mode": "classifier", "epochs": 15, "hidden_dim": 128, "batch_size": 32}
    result = at.train(config, digits_data, tracker=make_tracker("advanced_training"))

    assert result.best_metrics["test_acc"] >= 0.95


@pytest.mark.parametrize("mode, metric", [("classifier", "train_acc"),
                                          ("multimodal", "train_success_acc")])
def test_train_accuracy_off_leaves_out_the_train_accuracy_only(
    small_routing_data, make_tracker, client, mode, metric
):
    tracker = make_tracker("advanced_training")
    config = {"mode": mode, "epochs": 2, "seed": 4}
    counted = at.train(config, small_routing_data, tracker=tracker)
    uncounted = at.train({**config, "train_accuracy": False}, small_routing_data,
                         tracker=tracker)

    assert metric in client.get_run(counted.run_id).data.metrics
    metrics = client.get_run(uncounted.run_id).data.metrics
    assert metric not in metrics
    assert metrics["val_loss"] == client.get_run(counted.run_id).data.metrics["val_loss"]


def test_same_seed_gives_the_same_metrics(small_routing_data, make_tracker):
    tracker = make_tracker("advanced_training")
    config = {"mode": "multimodal", "epochs": 2, "seed": 5}
    first = at.train(config, small_routing_data, tracker=tracker)
    second = at.train(config, small_routing_data, tracker=tracker)
    other = at.train({**config, "seed": 6}, small_routing_data, tracker=tracker)

    def comparable(result):
        return {k: v for k, v in result.best_metrics.items() if k not in TIMING_KEYS}

    assert comparable(first) == comparable(second)
    assert comparable(first) != comparable(other)


def test_resume_continues_the_same_run_and_matches_an_uninterrupted_one(
    small_routing_data, make_tracker, client
):
    tracker = make_tracker("advanced_training")
    config = {"mode": "classifier", "epochs": 4, "seed": 2, "keep_checkpoints": 2}

    def crash_after_second_epoch(epoch, metrics):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        at.train(config, small_routing_data, tracker=tracker, on_epoch=crash_after_second_epoch)
    (run,) = client.search_runs([tracker.experiment_id])
    assert run.info.status == "FAILED"
    folder = f"checkpoints/advanced_training/{run.info.run_id}"
    assert [path.name for path in list_checkpoints(folder)] == ["epoch-0001.pt", "epoch-0002.pt"]

    resumed = at.train(config, small_routing_data, tracker=tracker, resume_from=folder)
    assert resumed.run_id == run.info.run_id and resumed.epochs_run == 4
    assert client.get_run(resumed.run_id).info.status == "FINISHED"
    assert [step for step, _ in history(client, resumed.run_id, "val_loss")] == [1, 2, 3, 4]
    steps = [step for step, _ in history(client, resumed.run_id, "step_loss")]
    assert steps == list(range(1, len(steps) + 1))  # continued, no gap, no repeat
    assert [p.name for p in list_checkpoints(folder)] == ["epoch-0003.pt", "epoch-0004.pt"]

    straight = at.train(config, small_routing_data, tracker=tracker)
    assert history(client, straight.run_id, "val_loss") == history(
        client, resumed.run_id, "val_loss")


def test_register_as_creates_a_registry_version(small_routing_data, make_tracker, client):
    result = at.train({"mode": "classifier", "epochs": 1}, small_routing_data,
                      tracker=make_tracker("advanced_training"), register_as="agent-router")

    assert result.registered_version == "1"
    assert client.get_model_version("agent-router", "1").run_id == result.run_id


@pytest.mark.parametrize("config, message", [
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"mode": "ranking"}, "mode"),
    ({"hidden_dim": 30, "attention_heads": 4}, "divisible"),
    ({"dropout": 1.5}, "dropout"),
    ({"epochs": "ten"}, "epochs"),
    ({"learnin_rate": 0.1}, "learnin_rate"),
])
def test_bad_config_raises_before_any_run(config, message, small_routing_data, make_tracker,
                                          client):
    with pytest.raises(TrainerConfigError, match=message):
        at.train(config, small_routing_data, tracker=make_tracker("advanced_training"))
    assert run_count(client) == 0


def test_unusable_data_raises_before_any_run(digits_data, make_tracker, client):
    from agentnn.data import build_interaction_dataset, synthesize_interactions

    tracker = make_tracker("advanced_training")
    tiny = build_interaction_dataset(synthesize_interactions(10, 4, seed=0), seed=0)
    with pytest.raises(TrainerConfigError, match="training split has"):
        at.train({"mode": "classifier"}, tiny, tracker=tracker)
    with pytest.raises(TrainerConfigError, match="interaction logs"):
        at.train({"mode": "multimodal"}, digits_data, tracker=tracker)
    with pytest.raises(TrainerConfigError, match="data set from agentnn.data"):
        at.train({"mode": "classifier"}, [[0.0, 1.0]], tracker=tracker)
    assert run_count(client) == 0


def test_resume_with_data_of_another_shape_raises_before_reopening(
    small_routing_data, make_tracker, client
):
    from agentnn.data import HashingFeaturizer, build_interaction_dataset, synthesize_interactions

    tracker = make_tracker("advanced_training")
    config = {"mode": "classifier", "epochs": 3}

    def crash(epoch, metrics):
        raise Interrupted

    with pytest.raises(Interrupted):
        at.train(config, small_routing_data, tracker=tracker, on_epoch=crash)
    (run,) = client.search_runs([tracker.experiment_id])
    folder = f"checkpoints/advanced_training/{run.info.run_id}"
    narrower = build_interaction_dataset(
        synthesize_interactions(200, 4, seed=1), HashingFeaturizer(dim=64), seed=0)
    with pytest.raises(TrainerConfigError, match="another shape"):
        at.train(config, narrower, tracker=tracker, resume_from=folder)
    with pytest.raises(TrainerConfigError, match="different config"):
        at.train({**config, "epochs": 5}, small_routing_data, tracker=tracker, resume_from=folder)
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert run_count(client) == 1
