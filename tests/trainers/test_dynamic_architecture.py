"""`dynamic_architecture`: an Optuna study with one parent run and a nested child run per trial."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
import torch

from agentnn.data import build_interaction_dataset, synthesize_interactions
from agentnn.errors import SearchFailedError, TrainerConfigError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.nn_models.dynamic_architecture import train
from agentnn.nn_models.search import study as search_study
from agentnn.nn_models.search.network import SEQUENTIAL_LAYOUT, build_model, reshape

EXPERIMENT = "architecture_optimization"
SMALL_SEARCH = {"n_trials": 3, "epochs": 3, "seed": 1, "pruner": "none"}


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


def test_search_logs_each_trial_as_a_child_and_the_leaderboard_on_the_parent(
    workdir: Path, store_uri: str, search_data
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    result = train(SMALL_SEARCH, search_data, tracker=tracker, study="s1")

    client = mlflow.MlflowClient(store_uri)
    parent, children = _runs(client, tracker.experiment_id)
    assert parent.info.run_id == result.run_id
    assert parent.data.tags["agentnn.study"] == "s1"
    assert len(children) == 3
    assert sorted(child.data.tags["agentnn.trial"] for child in children) == ["0", "1", "2"]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["agentnn.trial_state"] == "complete"
        assert {"activation", "dropout", "hidden_sizes", "depth", "learning_rate",
                "device"} <= set(child.data.params)
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")]
        assert steps == [1, 2, 3]
    assert parent.data.params["n_trials"] == "3"
    assert parent.data.params["data.records"] == "400"
    assert (workdir / "optuna.db").exists()  # the default storage, beside the store

    board = _artifact_json(client, result.run_id, "leaderboard.json", workdir)
    assert [row["rank"] for row in board] == [1, 2, 3]
    assert [row["val_loss"] for row in board] == sorted(row["val_loss"] for row in board)
    assert {row["run_id"] for row in board} == {child.info.run_id for child in children}
    best = _artifact_json(client, result.run_id, "best_architecture.json", workdir)
    assert best["hidden_sizes"] == board[0]["final_hidden_sizes"]
    assert parent.data.tags["agentnn.best_trial"] == str(board[0]["trial"])
    assert result.best_metrics["val_loss"] == pytest.approx(board[0]["val_loss"])

    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert np.asarray(model.predict(search_data.test.features[:5])).shape == (5, 4)


def test_hopeless_trials_are_pruned_and_tagged(store_uri: str, search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    eager = {**SMALL_SEARCH, "n_trials": 5, "pruner": "median", "prune_startup_trials": 1,
             "prune_warmup_epochs": 0, "learning_rates": [1e-5, 3e-2]}
    result = train(eager, search_data, tracker=tracker, study="pruning")

    client = mlflow.MlflowClient(store_uri)
    _, children = _runs(client, tracker.experiment_id)
    states = [child.data.tags["agentnn.trial_state"] for child in children]
    assert "pruned" in states and "complete" in states
    board = {row["trial"]: row for row in _artifact_json(
        client, result.run_id, "leaderboard.json", Path.cwd())}
    for child in children:
        row = board[int(child.data.tags["agentnn.trial"])]
        assert row["state"] == child.data.tags["agentnn.trial_state"]
        assert (row["rank"] is None) == (row["state"] != "complete")


@pytest.mark.parametrize("layout", [SEQUENTIAL_LAYOUT, None], ids=["sequential", "v1"])
def test_growing_keeps_the_function_and_the_optimiser_state(layout):
    torch.manual_seed(0)
    spec = {"n_features": 6, "n_classes": 3, "hidden_sizes": [4, 5], "activation": "gelu",
            "dropout": 0.0, **({"layout": layout} if layout else {})}
    model = build_model(spec)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    def make(m):
        return torch.optim.AdamW(m.parameters(), lr=0.01)

    def first_and_head(m):
        layers = [layer for layer in m.modules() if isinstance(layer, torch.nn.Linear)]
        return layers[0], layers[-1]

    generator = torch.Generator().manual_seed(1)
    grown, grown_optimizer = reshape(model, optimizer, [8, 10], spec, make, generator)

    assert torch.allclose(grown(x), model(x), atol=1e-6)
    old_state = optimizer.state[first_and_head(model)[0].weight]
    new_state = grown_optimizer.state[first_and_head(grown)[0].weight]
    assert new_state["exp_avg"].shape == (8, 6)
    assert torch.equal(new_state["exp_avg"][:4], old_state["exp_avg"])
    assert int(new_state["step"]) == 3

    shrunk, shrunk_optimizer = reshape(grown, grown_optimizer, [2, 3], spec, make, generator)
    assert shrunk(x).shape == (20, 3)
    head = first_and_head(shrunk)[1]
    assert shrunk_optimizer.state[head.weight]["exp_avg"].shape == (3, 3)


def test_search_models_are_built_by_the_one_mlp_builder():
    spec = {"n_features": 6, "n_classes": 3, "hidden_sizes": [4, 5], "activation": "tanh",
            "dropout": 0.1, "layout": SEQUENTIAL_LAYOUT}
    keys = list(build_model(spec).state_dict())
    assert keys == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]


@pytest.mark.parametrize("train_accuracy", [False, True])
def test_trials_log_train_accuracy_only_when_asked(store_uri: str, search_data, train_accuracy):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    train({**SMALL_SEARCH, "n_trials": 1, "train_accuracy": train_accuracy}, search_data,
             tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    _, (child,) = _runs(client, tracker.experiment_id)
    assert {"train_loss", "val_loss", "val_acc"} <= set(child.data.metrics)
    assert ("train_acc" in child.data.metrics) is train_accuracy
    if train_accuracy:
        assert 0.0 <= child.data.metrics["train_acc"] <= 1.0


def test_a_stalled_trial_is_reshaped_during_training(store_uri: str, search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    always_stalled = {**SMALL_SEARCH, "n_trials": 1, "stall_patience": 1,
                      "min_delta": 100.0, "max_reshapes": 1}
    train(always_stalled, search_data, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    _, (child,) = _runs(client, tracker.experiment_id)
    assert child.data.tags["agentnn.reshapes"].startswith("2:")
    units = [m.value for m in client.get_metric_history(child.info.run_id, "hidden_units")]
    assert units[0] == units[1] != units[2]


def test_same_seed_and_data_give_the_same_best_trial(workdir: Path, store_uri: str,
                                                      search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    first = train(SMALL_SEARCH, search_data, tracker=tracker, study="a",
                     storage=f"sqlite:///{workdir / 'a.db'}")
    second = train(SMALL_SEARCH, search_data, tracker=tracker, study="b",
                      storage=f"sqlite:///{workdir / 'b.db'}")
    assert first.best_metrics["val_loss"] == second.best_metrics["val_loss"]
    assert first.best_metrics["test_acc"] == second.best_metrics["test_acc"]


def test_running_the_same_search_again_continues_its_study_and_parent_run(
    workdir: Path, store_uri: str, search_data
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    first = train({**SMALL_SEARCH, "n_trials": 2}, search_data, tracker=tracker)
    second = train({**SMALL_SEARCH, "n_trials": 2}, search_data, tracker=tracker)

    assert second.run_id == first.run_id and second.study == first.study
    client = mlflow.MlflowClient(store_uri)
    _, children = _runs(client, tracker.experiment_id)
    assert sorted(int(child.data.tags["agentnn.trial"]) for child in children) == [0, 1, 2, 3]
    board = _artifact_json(client, second.run_id, "leaderboard.json", workdir)
    assert sorted(row["trial"] for row in board) == [0, 1, 2, 3]


def test_workers_share_the_trial_budget(workdir: Path, store_uri: str, search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    storage = f"sqlite:///{workdir / 'shared.db'}"
    result = train({**SMALL_SEARCH, "n_trials": 4, "epochs": 2}, search_data,
                      tracker=tracker, study="pair", storage=storage, workers=2)

    study = optuna.load_study(study_name="pair", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
    assert len({t.user_attrs[search_study.PID_ATTR] for t in study.trials}) == 2
    client = mlflow.MlflowClient(store_uri)
    parent, children = _runs(client, tracker.experiment_id)
    assert parent.info.run_id == result.run_id
    assert sorted(int(child.data.tags["agentnn.trial"]) for child in children) == [0, 1, 2, 3]


def test_old_config_names_still_work_with_a_warning(store_uri: str, search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    old = {"n_candidates": 1, "epochs": 1, "lr": 0.003, "checkpoint_root": "ckpt"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(old, search_data, tracker=tracker)
    assert {"n_candidates", "lr", "checkpoint_root"} <= {
        str(w.message).split("'")[1] for w in caught if issubclass(w.category, DeprecationWarning)}
    run = mlflow.MlflowClient(store_uri).get_run(result.run_id)
    assert run.data.params["n_trials"] == "1"
    assert run.data.params["learning_rates"] == "[0.003, 0.003]"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"activations": ["swish"]}, "activations"),
        ({"min_width": 64, "max_width": 32}, "min_width"),
        ({"depths": []}, "depths"),
        ({"n_trials": 0}, "n_trials"),
        ({"learning_rates": [0.1, 0.01]}, "learning_rates"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_config_raises_before_any_run_exists(store_uri, search_data, config, message):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match=message):
        train(config, search_data, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


def test_a_checkpoint_resume_is_refused_with_the_way_to_resume(store_uri, search_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match="--study"):
        train(SMALL_SEARCH, search_data, tracker=tracker, resume_from="checkpoints")


def test_too_small_data_raises_before_any_run_exists(store_uri: str):
    tiny = build_interaction_dataset(synthesize_interactions(12, n_agents=2, seed=0), seed=0)
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match="needs at least"):
        train(SMALL_SEARCH, tiny, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


def test_a_search_whose_every_trial_diverges_fails_with_one_line_naming_the_study(
    store_uri: str, search_data
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    diverging = {**SMALL_SEARCH, "n_trials": 2, "learning_rates": [1e30, 1e30]}

    with pytest.raises(SearchFailedError, match=r"'doomed'.*no trial completed.*2 failed"):
        train(diverging, search_data, tracker=tracker, study="doomed")

    client = mlflow.MlflowClient(store_uri)
    _, children = _runs(client, tracker.experiment_id)
    assert [child.data.tags["agentnn.trial_state"] for child in children] == ["failed"] * 2
