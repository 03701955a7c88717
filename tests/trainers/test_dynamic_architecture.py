"""`dynamic_architecture`: a search of nested child runs under one parent, with a leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from trainer_helpers import Interrupted

from agentnn.data import build_interaction_dataset, synthesize_interactions
from agentnn.errors import TrainerConfigError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.nn_models import dynamic_architecture as da

EXPERIMENT = "architecture_optimization"
SMALL_SEARCH = {"n_candidates": 3, "epochs": 3, "seed": 1}


@pytest.fixture(scope="module")
def search_data():
    return build_interaction_dataset(synthesize_interactions(400, n_agents=4, seed=2), seed=2)


def _runs(client: mlflow.MlflowClient, experiment_id: str) -> tuple[object, list]:
    runs = client.search_runs([experiment_id], order_by=["attributes.start_time ASC"])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1
    return parents[0], [run for run in runs if run is not parents[0]]


def _artifact_json(client: mlflow.MlflowClient, run_id: str, name: str, workdir: Path):
    path = client.download_artifacts(run_id, name, str(workdir))
    return json.loads(Path(path).read_text())


def test_search_logs_each_candidate_as_a_child_and_the_leaderboard_on_the_parent(
    workdir: Path, store_uri: str, search_data
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    result = da.train(SMALL_SEARCH, search_data, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    parent, children = _runs(client, tracker.experiment_id)
    assert parent.info.run_id == result.run_id
    assert len(children) == 3
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"activation", "dropout", "hidden_sizes", "depth"} <= set(child.data.params)
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")]
        assert steps == [1, 2, 3]
        for key in ("train_loss", "val_acc", "lr", "samples_per_s", "epoch_time_s"):
            assert key in child.data.metrics
    assert parent.data.params["n_candidates"] == "3"
    assert parent.data.params["data.records"] == "400"

    board = _artifact_json(client, result.run_id, "leaderboard.json", workdir)
    assert [row["rank"] for row in board] == [1, 2, 3]
    assert [row["val_loss"] for row in board] == sorted(row["val_loss"] for row in board)
    assert {row["run_id"] for row in board} == {child.info.run_id for child in children}
    assert "leaderboard.csv" in {item.path for item in client.list_artifacts(result.run_id)}
    best = _artifact_json(client, result.run_id, "best_architecture.json", workdir)
    assert best["hidden_sizes"] == board[0]["final_hidden_sizes"]
    assert parent.data.params["best_candidate"] == str(board[0]["candidate"])
    assert result.best_metrics["val_loss"] == pytest.approx(board[0]["val_loss"])

    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    scores = np.asarray(model.predict(search_data.test.features[:5]))
    assert scores.shape == (5, 4)


def test_growing_keeps_the_function_and_the_optimiser_state():
    torch.manual_seed(0)
    spec = {"n_features": 6, "n_classes": 3, "hidden_sizes": [4, 5], "activation": "gelu",
            "dropout": 0.0}
    model = da.build_model(spec)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    def make(m):
        return torch.optim.AdamW(m.parameters(), lr=0.01)

    generator = torch.Generator().manual_seed(1)
    grown, grown_optimizer = da.reshape(model, optimizer, [8, 10], spec, make, generator)

    assert torch.allclose(grown(x), model(x), atol=1e-6)
    old_state = optimizer.state[model.hidden[0].weight]
    new_state = grown_optimizer.state[grown.hidden[0].weight]
    assert new_state["exp_avg"].shape == (8, 6)
    assert torch.equal(new_state["exp_avg"][:4], old_state["exp_avg"])
    assert int(new_state["step"]) == 3

    shrunk, shrunk_optimizer = da.reshape(grown, grown_optimizer, [2, 3], spec, make, generator)
    assert shrunk(x).shape == (20, 3)
    assert shrunk_optimizer.state[shrunk.head.weight]["exp_avg"].shape == (3, 3)


def test_a_stalled_candidate_is_reshaped_during_training(store_uri: str, search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    always_stalled = {**SMALL_SEARCH, "n_candidates": 1, "stall_patience": 1,
                      "min_delta": 100.0, "max_reshapes": 1}
    da.train(always_stalled, search_data, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    _, (child,) = _runs(client, tracker.experiment_id)
    assert child.data.tags["agentnn.reshapes"].startswith("2:")
    units = [m.value for m in client.get_metric_history(child.info.run_id, "hidden_units")]
    assert units[0] == units[1] != units[2]


def test_same_seed_and_data_give_the_same_leaderboard(store_uri: str, search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    first = da.train(SMALL_SEARCH, search_data, tracker=tracker)
    second = da.train(SMALL_SEARCH, search_data, tracker=tracker)
    assert first.best_metrics["val_loss"] == second.best_metrics["val_loss"]
    assert first.best_metrics["test_acc"] == second.best_metrics["test_acc"]


def test_resume_trains_only_the_unfinished_candidates_in_the_same_parent_run(
    workdir: Path, store_uri: str, search_data
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)

    def stop_in_second_candidate(epoch: int, metrics: dict[str, float]) -> None:
        if metrics["candidate"] == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        da.train(SMALL_SEARCH, search_data, tracker=tracker, on_epoch=stop_in_second_candidate)
    client = mlflow.MlflowClient(store_uri)
    parent, _ = _runs(client, tracker.experiment_id)
    folder = workdir / "checkpoints" / EXPERIMENT / parent.info.run_id

    result = da.train(SMALL_SEARCH, search_data, tracker=tracker, resume_from=folder)

    assert result.run_id == parent.info.run_id
    _, children = _runs(client, tracker.experiment_id)
    names = sorted((child.info.run_name, child.info.status) for child in children)
    assert names == [("candidate-1", "FINISHED"), ("candidate-2", "FAILED"),
                     ("candidate-2", "FINISHED"), ("candidate-3", "FINISHED")]
    steps = [m.step for m in client.get_metric_history(result.run_id, "candidate_val_loss")]
    assert steps == [1, 2, 3]
    board = _artifact_json(client, result.run_id, "leaderboard.json", workdir)
    assert sorted(row["candidate"] for row in board) == [1, 2, 3]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"activations": ["swish"]}, "activations"),
        ({"min_width": 64, "max_width": 32}, "min_width"),
        ({"depths": []}, "depths"),
        ({"n_candidates": 0}, "n_candidates"),
    ],
)
def test_bad_config_raises_before_any_run_exists(store_uri, search_data, config, message):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match=message):
        da.train(config, search_data, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


def test_too_small_data_raises_before_any_run_exists(store_uri: str):
    tiny = build_interaction_dataset(synthesize_interactions(12, n_agents=2, seed=0), seed=0)
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match="needs at least"):
        da.train(SMALL_SEARCH, tiny, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []
