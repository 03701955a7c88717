"""`training_infrastructure.train` in one process: accumulation, seeding, resume, bad input."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from trainer_helpers import Interrupted

from agentnn.data import (
    LabelledDataset,
    Split,
    build_interaction_dataset,
    synthesize_interactions,
)
from agentnn.errors import TrainerConfigError
from agentnn.mlflow_integration import ExperimentTracker
from agentnn.nn_models import training_infrastructure as ti

EXPERIMENT = "distributed_training"


def _history(client: mlflow.MlflowClient, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_accumulating_two_half_batches_matches_one_full_batch(store_uri, small_routing_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    common = {"epochs": 2, "dropout": 0.0, "scheduler": "constant", "seed": 5}
    data = small_routing_data
    accumulated = ti.train({**common, "batch_size": 8, "grad_accum_steps": 2}, data,
                           tracker=tracker)
    full = ti.train({**common, "batch_size": 16, "grad_accum_steps": 1}, data, tracker=tracker)
    stepped = ti.train({**common, "batch_size": 8, "grad_accum_steps": 1}, data, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    acc_val = _history(client, accumulated.run_id, "val_loss")
    full_val = _history(client, full.run_id, "val_loss")
    assert acc_val == pytest.approx(full_val, rel=1e-5)
    assert _history(client, stepped.run_id, "val_loss") != pytest.approx(full_val, rel=1e-5)
    # one optimiser step (and one step_loss point) per two micro-batches
    assert max(_history(client, accumulated.run_id, "step_loss")) == max(
        _history(client, full.run_id, "step_loss")
    )


def test_same_seed_and_data_give_the_same_metrics(store_uri: str, small_routing_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    config = {"epochs": 2, "seed": 11}
    first = ti.train(config, small_routing_data, tracker=tracker)
    second = ti.train(config, small_routing_data, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    for key in ("train_loss", "val_loss", "val_acc", "step_loss"):
        assert _history(client, first.run_id, key) == _history(client, second.run_id, key), key


def test_the_router_learns_to_route_well_above_chance(store_uri: str, routing_data):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    result = ti.train({"epochs": 10, "seed": 0}, routing_data, tracker=tracker)
    assert result.best_metrics["test_acc"] >= 0.8  # chance is 0.25 with four agents
    assert result.best_metrics["val_acc"] >= 0.8


def test_resume_continues_the_same_run_from_its_last_checkpoint(
    workdir: Path, store_uri: str, small_routing_data
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    config = ti.DistributedConfig(epochs=3, keep_checkpoints=1, seed=2)

    def stop_after_first_epoch(epoch: int, metrics: dict[str, float]) -> None:
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        ti.train(config, small_routing_data, tracker=tracker, on_epoch=stop_after_first_epoch)
    client = mlflow.MlflowClient(store_uri)
    (interrupted,) = client.search_runs([tracker.experiment_id])
    folder = workdir / "checkpoints" / EXPERIMENT / interrupted.info.run_id
    assert [path.name for path in folder.iterdir()] == ["epoch-0001.pt"]

    result = ti.train(config, small_routing_data, tracker=tracker, resume_from=folder)

    assert result.run_id == interrupted.info.run_id
    assert len(client.search_runs([tracker.experiment_id])) == 1
    assert sorted(_history(client, result.run_id, "val_loss")) == [1, 2, 3]
    steps = sorted(_history(client, result.run_id, "step_loss"))
    every = config.log_every_steps  # reduced and logged at intervals, not every step
    assert steps == list(range(every, every * len(steps) + 1, every))  # no gap, no repeat
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert [path.name for path in folder.iterdir()] == ["epoch-0003.pt"]  # keeps the last 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"grad_accum_steps": 0}, "grad_accum_steps"),
        ({"hidden_sizes": []}, "hidden_dims"),  # the old name, answered with the new one
        ({"backend": "mpi"}, "backend"),
        ({"learnin_rate": 0.1}, "unknown DistributedConfig key"),
    ],
)
def test_bad_config_raises_before_any_run_exists(store_uri, small_routing_data, config, message):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match=message):
        ti.train(config, small_routing_data, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


def test_too_small_data_raises_before_any_run_exists(store_uri: str):
    tiny = build_interaction_dataset(synthesize_interactions(12, n_agents=2, seed=0), seed=0)
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match="needs at least"):
        ti.train({}, tiny, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


def test_splits_with_different_feature_counts_raise_before_any_run_exists(store_uri: str):
    rng = np.random.default_rng(0)

    def split(n: int, features: int) -> Split:
        return Split(rng.random((n, features), dtype=np.float32), rng.integers(0, 3, n))

    mismatched = LabelledDataset(train=split(40, 8), val=split(10, 6), test=split(10, 8),
                                 class_names=("a", "b", "c"), params={"data.source": "test"})
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    with pytest.raises(TrainerConfigError, match="validation split: the data has 6, the model"):
        ti.train({}, mismatched, tracker=tracker)
    assert mlflow.MlflowClient(store_uri).search_runs([tracker.experiment_id]) == []


def test_train_accuracy_is_off_by_default_and_counting_it_trains_the_same(
    workdir: Path, store_uri: str, small_routing_data
):
    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    config = {"epochs": 2, "seed": 3, "rank_metrics_dir": str(workdir / "ranks-off")}
    uncounted = ti.train(config, small_routing_data, tracker=tracker)
    counted = ti.train({**config, "train_accuracy": True,
                        "rank_metrics_dir": str(workdir / "ranks")},
                       small_routing_data, tracker=tracker)

    client = mlflow.MlflowClient(store_uri)
    assert "train_acc" in client.get_run(counted.run_id).data.metrics
    metrics = client.get_run(uncounted.run_id).data.metrics
    assert "train_acc" not in metrics
    # the accuracy only reports: the same weights come out either way
    assert _history(client, uncounted.run_id, "val_loss") == _history(
        client, counted.run_id, "val_loss")
    rank_line = (workdir / "ranks-off" / "rank-0.jsonl").read_text().splitlines()[0]
    assert '"correct": null' in rank_line


def test_a_checkpoint_written_before_a_config_key_existed_still_resumes(
    workdir: Path, store_uri: str, small_routing_data
):
    import torch

    tracker = ExperimentTracker(EXPERIMENT, tracking_uri=store_uri)
    config = ti.DistributedConfig(epochs=2, seed=2)

    def stop_after_first_epoch(epoch: int, metrics: dict[str, float]) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        ti.train(config, small_routing_data, tracker=tracker, on_epoch=stop_after_first_epoch)
    client = mlflow.MlflowClient(store_uri)
    (interrupted,) = client.search_runs([tracker.experiment_id])
    (saved,) = (workdir / "checkpoints" / EXPERIMENT / interrupted.info.run_id).iterdir()
    older = torch.load(saved, weights_only=True)
    del older["config"]["train_accuracy"]  # as an earlier version wrote it
    torch.save(older, saved)

    with pytest.raises(TrainerConfigError, match="train_accuracy: False -> True"):
        ti.train({**config.__dict__, "train_accuracy": True}, small_routing_data,
                 tracker=tracker, resume_from=saved)
    result = ti.train(config, small_routing_data, tracker=tracker, resume_from=saved)
    assert result.run_id == interrupted.info.run_id
    assert sorted(_history(client, result.run_id, "val_loss")) == [1, 2]
